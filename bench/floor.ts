// The floor of our design: what a hold or release costs when only what our guarantees need is
// done, in ONE autocommit statement on a bare node:http server: verify the HMAC, parse the JSON,
// write the delivery row with its reply, lock and change the listing, write the ledger row.
// No validation, no deadline or commit confirmation, no back-pressure, no logging: not a
// service, a bound. The bench runs it beside the ceiling (workload (a), 8 connections) so that
// the share of the ceiling any implementation of this design could reach on this machine is
// measured, not guessed. Same contract as bench/ceiling.ts (PORT, DATABASE_URL, ...).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import postgres from 'postgres';

const port = Number(process.env.PORT);
const token = process.env.TIXSTOCK_BEARER_TOKEN ?? '';
const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.DATABASE_POOL_SIZE ?? 8), onnotice: () => {} });

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
    const parsed = JSON.parse(body.toString('utf8')) as { data: { external_id: string; hold_quantity?: number; release_quantity?: number }; meta: { type: string } };
    const type = parsed.meta.type;
    const id = parsed.data.external_id;
    const n = parsed.data.hold_quantity ?? parsed.data.release_quantity ?? 1;
    const delta = type === 'ticket.hold' ? -n : n;
    sql`
      with d_id as (select nextval('deliveries_id_seq') as id),
      old as (select id, status, quantity, quantity_ceiling from listings where id = ${id} for update),
      changed as (
        update listings l set quantity = greatest(0, least(old.quantity_ceiling, old.quantity + ${delta}::int)), updated_at = now()
          from old where l.id = old.id and old.status = 'published'
        returning l.id, old.quantity as before, l.quantity as after
      ), ledger as (
        insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
        select changed.id, d_id.id, ${type}, ${n}, before, after from changed, d_id
      ), d as (
        insert into deliveries (id, version, type, path, headers, body, body_sha256, outcome, status, reply, listing_id)
        overriding system value
        select d_id.id, 'v1', ${type}, ${req.url!}, ${sql.json({ 'content-type': 'application/json' })}, ${body},
               ${createHash('sha256').update(body).digest()}, 'applied', 200,
               json_build_object('listing_id', ${id}::text, 'success', true, 'message', 'quantity ' || changed.before || ' -> ' || changed.after),
               ${id}
          from d_id left join changed on true
        returning reply
      )
      select reply from d`.then(
      ([row]) => reply(res, 200, JSON.stringify(row!.reply)),
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
