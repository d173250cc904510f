// The ceiling: the least any webhook receiver on this machine must do. A bare node:http server
// that reads the body, verifies its HMAC and commits one INSERT of it (one round trip, autocommit)
// into the same PostgreSQL the service uses, with the same pool size. The bench reports the
// service's numbers as ratios to this server's, measured side by side in the same run.
// Run as its own process: PORT, DATABASE_URL, TIXSTOCK_BEARER_TOKEN, DATABASE_POOL_SIZE.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import postgres from 'postgres';

const port = Number(process.env.PORT);
const token = process.env.TIXSTOCK_BEARER_TOKEN ?? '';
const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.DATABASE_POOL_SIZE ?? 8), onnotice: () => {} });

await sql`create table if not exists bench_ceiling (id bigint generated always as identity primary key, body bytea not null)`;

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const given = Buffer.from(String(req.headers['x-tixstock-signature'] ?? ''), 'hex');
    const expected = createHmac('sha256', token).update(body).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply(res, 401, '{"success":false}');
    sql`insert into bench_ceiling (body) values (${body})`.then(
      () => reply(res, 200, '{"success":true}'),
      (err: Error) => reply(res, 503, JSON.stringify({ success: false, message: err.message })),
    );
  });
});
server.keepAliveTimeout = 95_000;
server.listen(port, '127.0.0.1', () => process.send?.({ ready: true }));
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void sql.end({ timeout: 2 }).then(() => process.exit(0));
});
