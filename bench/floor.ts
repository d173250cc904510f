// The floor of our design: what a hold or release costs when only what our guarantees need is
// done, in ONE autocommit statement on a bare node:http server: verify the HMAC, parse the JSON,
// write the delivery row with its reply, lock and change the listing, write the ledger row.
// No validation, no deadline or commit confirmation, no back-pressure, no logging: not a
// service, a bound. The bench runs it beside the ceiling (workload (a), 8 connections) so that
// the share of the ceiling any implementation of this design could reach on this machine is
// measured, not guessed. Same contract as bench/ceiling.ts (PORT, DATABASE_URL, ...).
import { serveSigned, sql } from './bare-server.js';
import { floorStatement } from './floor-statement.js';

serveSigned(async (body, url) => {
  const parsed = JSON.parse(body.toString('utf8')) as {
    data: { external_id: string; hold_quantity?: number; release_quantity?: number };
    meta: { type: string };
  };
  const type = parsed.meta.type;
  const id = parsed.data.external_id;
  const n = parsed.data.hold_quantity ?? parsed.data.release_quantity ?? 1;
  const delta = type === 'ticket.hold' ? -n : n;
  const [row] = await floorStatement(sql, id, body, url, type, n, delta);
  return JSON.stringify(row!.reply);
});
