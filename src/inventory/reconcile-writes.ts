// What a reconciliation run reads and writes in the inventory: our rows for a page of Tixstock's
// listings, and the repairs (Tixstock's values as absolute state), imports and tombstones.
// Every write locks the listing and first checks that no transaction newer than the run's
// snapshot (taken just before the page was requested) wrote it, and that no hold of ours on it
// is still being settled with Tixstock: a webhook or our own sale that landed meanwhile is newer
// than the page, and wins. Quantity changes are ledger rows with
// reason 'reconcile' and the run's id.
import type { Sql, Tx } from '../db/connect.js';
import { isListingId, type ListingFields } from './listings.js';
import type { EventInput } from './events.js';

/** pg_current_snapshot() as text: which transactions had committed at that moment. */
export async function currentSnapshot(sql: Sql): Promise<string> {
  const [row] = await sql<{ snapshot: string }[]>`select pg_current_snapshot()::text as snapshot`;
  return row!.snapshot;
}

export interface ComparedListing {
  id: string;
  status: 'published' | 'deleted';
  quantity: number;
  broker_id: string;
  event_id: string;
  first_seat: string | null;
  tixstock_display_price: unknown;
  proceed_price: unknown;
  face_value: unknown;
  seat_details: unknown;
  /** Written by a transaction that had not committed when `snapshot` was taken. */
  changed_after: boolean;
}

/** True for a listing of `l` written after `snapshot`, or with a hold of ours that Tixstock has
 * not settled yet (reserved here, its answer unknown; or a release or order being sent): its
 * quantity here is ahead of (or behind) Tixstock's for a good reason. An order/add whose answer
 * was lost keeps its busy mark for good, past busy_until: that one Tixstock's quantity corrects. */
const changedAfter = (sql: Sql | Tx, snapshot: string) => sql`(
  coalesce(not pg_visible_in_snapshot(l.changed_xid, ${snapshot}::pg_snapshot), false)
  or exists (select 1 from holds h where h.listing_id = l.id and (h.status = 'pending' or (h.busy is not null and h.busy_until > now()))))`;

const COMPARED = (sql: Sql | Tx, snapshot: string) => sql`
  l.id::text, l.status, l.quantity, l.broker_id, l.event_id, l.first_seat, l.tixstock_display_price, l.proceed_price, l.face_value,
  l.seat_details, ${changedAfter(sql, snapshot)} as changed_after`;

/** Our rows for the given listing ids (ids that are not ours are left out). */
export async function listingsToCompare(sql: Sql | Tx, ids: string[], snapshot: string): Promise<ComparedListing[]> {
  const own = ids.filter(isListingId);
  if (own.length === 0) return [];
  return sql<
    ComparedListing[]
  >`select ${COMPARED(sql, snapshot)} from listings l where l.id = any(${own}::bigint[]) order by l.id`;
}

/** Ids of published listings of ours, unchanged since `snapshot`, after `after`, in order. */
export async function publishedIdsUnchangedSince(sql: Sql, snapshot: string, after: string, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select l.id::text from listings l
     where l.status = 'published' and l.id > ${after}::bigint
       and (l.changed_xid is null or pg_visible_in_snapshot(l.changed_xid, ${snapshot}::pg_snapshot))
     order by l.id
     limit ${limit}`;
  return rows.map((r) => r.id);
}

export type RepairOutcome = 'repaired' | 'changed_here' | 'not_found' | 'deleted_here';

/** Locks the listing; 'changed_here' when a transaction newer than `snapshot` wrote it. */
async function lockUnchanged(
  tx: Tx,
  id: string,
  snapshot: string,
): Promise<{ outcome: RepairOutcome; quantity?: number; status?: string }> {
  const [row] = await tx<{ quantity: number; status: string; newer: boolean }[]>`
    select l.quantity, l.status, ${changedAfter(tx, snapshot)} as newer from listings l where l.id = ${id}::bigint for update of l`;
  if (!row) return { outcome: 'not_found' };
  if (row.newer) return { outcome: 'changed_here' };
  return { outcome: 'repaired', quantity: row.quantity, status: row.status };
}

async function ledger(tx: Tx, id: string, reconciliationId: string, before: number | null, after: number): Promise<void> {
  await tx`
    insert into listing_quantity_changes (listing_id, reconciliation_id, reason, requested, before, after)
    values (${id}::bigint, ${reconciliationId}, 'reconcile', ${after}, ${before}, ${after})`;
}

const FIELD_COLUMNS = `id bigint, quantity int, event_id text, broker_id text, first_seat text, display_price jsonb,
  tixstock_display_price jsonb, proceed_price jsonb, face_value jsonb, seat_details jsonb, ticket jsonb, data jsonb`;

const fieldRows = (items: { id: string; fields: ListingFields }[]) =>
  JSON.stringify(
    items.map(({ id, fields: f }) => ({
      id,
      quantity: f.quantity,
      event_id: f.eventId,
      broker_id: f.brokerId,
      first_seat: f.firstSeat,
      display_price: f.displayPrice,
      tixstock_display_price: f.tixstockDisplayPrice,
      proceed_price: f.proceedPrice,
      face_value: f.faceValue,
      seat_details: f.seatDetails,
      ticket: f.ticket,
      data: f.data,
    })),
  );

/**
 * Sets every field of published listings to Tixstock's (quantity and ceiling included), in one
 * statement: the rows are locked in id order, and one written by a transaction newer than
 * `snapshot` is left alone ('changed_here'), as is a tombstone ('deleted_here').
 */
export async function repairListings(
  tx: Tx,
  p: { reconciliationId: string; snapshot: string; items: { id: string; fields: ListingFields }[] },
): Promise<Map<string, RepairOutcome>> {
  if (p.items.length === 0) return new Map();
  const rows = await tx<{ id: string; outcome: RepairOutcome }[]>`
    with input as (
      select * from json_to_recordset(${fieldRows(p.items)}::text::json) as i(${tx.unsafe(FIELD_COLUMNS)})
    ), old as (
      select l.id, l.quantity, l.status, ${changedAfter(tx, p.snapshot)} as newer
        from listings l where l.id = any(${p.items.map((i) => i.id)}::bigint[]) order by l.id for update of l
    ), changed as (
      update listings l
         set quantity = i.quantity, quantity_ceiling = i.quantity, event_id = i.event_id, broker_id = i.broker_id, first_seat = i.first_seat,
             display_price = i.display_price, tixstock_display_price = i.tixstock_display_price, proceed_price = i.proceed_price,
             face_value = i.face_value, seat_details = i.seat_details, ticket = i.ticket, data = i.data, updated_at = now()
        from input i join old o using (id)
       where l.id = i.id and not o.newer and o.status = 'published'
      returning l.id, o.quantity as before, i.quantity as after
    ), ledger as (
      insert into listing_quantity_changes (listing_id, reconciliation_id, reason, requested, before, after)
      select id, ${p.reconciliationId}, 'reconcile', after, before, after from changed where before <> after order by id
    )
    select i.id::text,
           case when o.id is null then 'not_found' when o.newer then 'changed_here' when o.status = 'deleted' then 'deleted_here' else 'repaired' end as outcome
      from input i left join old o using (id)`;
  return new Map(rows.map((r) => [r.id, r.outcome]));
}

/** Tombstones a published listing that Tixstock has deleted or no longer has. */
export async function tombstoneListing(
  tx: Tx,
  p: { id: string; reconciliationId: string; snapshot: string },
): Promise<RepairOutcome> {
  const lock = await lockUnchanged(tx, p.id, p.snapshot);
  if (lock.outcome !== 'repaired') return lock.outcome;
  if (lock.status === 'deleted') return 'deleted_here';
  await tx`
    update listings set status = 'deleted', quantity = 0, quantity_ceiling = 0, deleted_at = now(), updated_at = now()
     where id = ${p.id}::bigint`;
  if (lock.quantity !== 0) await ledger(tx, p.id, p.reconciliationId, lock.quantity!, 0);
  return 'repaired';
}

/** Creates the events that `events` names and we do not have; ours are left as they are. */
export async function addMissingEvents(tx: Tx, events: EventInput[]): Promise<void> {
  if (events.length === 0) return;
  const rows = JSON.stringify(
    events.map((e) => ({
      id: e.id,
      name: e.name,
      datetime: e.datetime ?? null,
      status: e.status ?? null,
      venue: e.venue ?? null,
      data: e,
    })),
  );
  await tx`
    insert into events (id, name, datetime, status, venue, data)
    select distinct on (id) id, name, datetime, status, venue, data
      from json_to_recordset(${rows}::text::json) as e(id text, name text, datetime text, status text, venue jsonb, data jsonb)
     order by id
    on conflict (id) do nothing`;
}

/**
 * Creates listings we do not have under Tixstock's ids (which are ours: issued by an earlier
 * install of this service). When an id is not below our sequence, the sequence is moved past
 * it under a lock that waits for every transaction inserting listings (SHARE ROW EXCLUSIVE
 * conflicts with their ROW EXCLUSIVE), so no ticket.add can be issued an id at the same time
 * and collide later. Call it before any other write to listings in its transaction (the events
 * of the listings must exist: addMissingEvents). Returns the ids created.
 */
export async function importListings(
  tx: Tx,
  reconciliationId: string,
  items: { id: string; fields: ListingFields }[],
): Promise<string[]> {
  const own = items.filter((i) => isListingId(i.id));
  if (own.length === 0) return [];
  const highest = own
    .map((i) => BigInt(i.id))
    .reduce((a, b) => (a > b ? a : b))
    .toString();
  const [seq] = await tx<{ below: boolean }[]>`select ${highest}::bigint < last_value as below from listing_id_seq`;
  if (!seq!.below) {
    await tx`lock table listings in share row exclusive mode`;
    await tx`select setval('listing_id_seq', ${highest}::bigint) where ${highest}::bigint >= (select last_value from listing_id_seq)`;
  }
  const rows = await tx<{ id: string }[]>`
    with input as (
      select * from json_to_recordset(${fieldRows(own)}::text::json) as i(${tx.unsafe(FIELD_COLUMNS)})
    ), created as (
      insert into listings (id, event_id, broker_id, quantity, quantity_ceiling, first_seat, display_price,
                            tixstock_display_price, proceed_price, face_value, seat_details, ticket, data)
      select id, event_id, broker_id, quantity, quantity, first_seat, display_price, tixstock_display_price, proceed_price,
             face_value, seat_details, ticket, data
        from input order by id
      on conflict (id) do nothing
      returning id, quantity
    ), ledger as (
      insert into listing_quantity_changes (listing_id, reconciliation_id, reason, requested, before, after)
      select id, ${reconciliationId}, 'reconcile', quantity, null, quantity from created order by id
    )
    select id::text from created order by id`;
  return rows.map((r) => r.id);
}
