// The floor of our design: what a hold or release costs when only what our guarantees need is
// done, in ONE autocommit statement on a bare node:http server: verify the HMAC, parse the JSON,
// write the delivery row with its reply, lock and change the listing, write the ledger row.
// No validation, no deadline or commit confirmation, no back-pressure, no logging: not a
// service, a bound. The bench runs it beside the ceiling (workload (a), 8 connections) so that
// the share of the ceiling any implementation of this design could reach on this machine is
// measured, not guessed. Same contract as bench/ceiling.ts (PORT, DATABASE_URL, ...).
import { createHash } from 'node:crypto';
import { serveSigned, sql } from './bare-server.js';

serveSigned(async (body, url) => {
  const parsed = JSON.parse(body.toString('utf8')) as {
    data: { external_id: string; hold_quantity?: number; release_quantity?: number };
    meta: { type: string };
  };
  const type = parsed.meta.type;
  const id = parsed.data.external_id;
  const n = parsed.data.hold_quantity ?? parsed.data.release_quantity ?? 1;
  const delta = type === 'ticket.hold' ? -n : n;
  const [row] = await sql`
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
      select d_id.id, 'v1', ${type}, ${url}, ${sql.json({ 'content-type': 'application/json' })}, ${body},
             ${createHash('sha256').update(body).digest()}, 'applied', 200,
             json_build_object('listing_id', ${id}::text, 'success', true, 'message', 'quantity ' || changed.before || ' -> ' || changed.after),
             ${id}
        from d_id left join changed on true
      returning reply
    )
    select reply from d`;
  return JSON.stringify(row!.reply);
});
