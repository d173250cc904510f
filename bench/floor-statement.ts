// The floor's one statement (bench/floor.ts): the delivery row with its reply, the listing locked
// and changed, the ledger row. Also measured alone by bench/statement-cost.ts.
import { createHash } from 'node:crypto';
import type postgres from 'postgres';

export function floorStatement(sql: postgres.Sql, id: string, body: Buffer, url: string, type: string, n: number, delta: number) {
  return sql<{ reply: Record<string, unknown> }[]>`
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
}
