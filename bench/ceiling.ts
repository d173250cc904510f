// The ceiling: the least any webhook receiver on this machine must do. A bare node:http server
// that reads the body, verifies its HMAC and commits one INSERT of it (one round trip, autocommit)
// into the same PostgreSQL the service uses, with the same pool size. The bench reports the
// service's numbers as ratios to this server's, measured side by side in the same run.
import { serveSigned, sql } from './bare-server.js';

await sql`create table if not exists bench_ceiling (id bigint generated always as identity primary key, body bytea not null)`;

serveSigned(async (body) => {
  await sql`insert into bench_ceiling (body) values (${body})`;
  return '{"success":true}';
});
