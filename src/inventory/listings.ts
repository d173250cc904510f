// Listings and their quantity ledger. Every change to one listing locks its row (FOR UPDATE)
// in the webhook's transaction, so concurrent webhooks for the same listing, on any number of
// processes, take turns and quantities stay exact. Each statement below changes the listing
// and writes its ledger row together.
import { type Fragment, jsonOrNull as json, pageWhere, type Sql, type Tx } from '../db/connect.js';
import { isSerialId } from '../ids.js';
import type { Money } from '../money.js';

export interface ListingFields {
  brokerId: string;
  eventId: string;
  quantity: number;
  firstSeat: string | null;
  displayPrice: Money;
  tixstockDisplayPrice: Money;
  proceedPrice: Money | null;
  faceValue: Money | null;
  seatDetails: unknown;
  ticket: unknown;
  data: unknown;
}

export const isListingId = isSerialId;

export async function createListing(tx: Tx, deliveryId: string, f: ListingFields): Promise<string> {
  const [row] = await tx<{ id: string }[]>`
    with created as (
      insert into listings (event_id, broker_id, quantity, quantity_ceiling, first_seat, display_price,
                            tixstock_display_price, proceed_price, face_value, seat_details, ticket, data)
      values (${f.eventId}, ${f.brokerId}, ${f.quantity}, ${f.quantity}, ${f.firstSeat}, ${json(tx, f.displayPrice)},
              ${json(tx, f.tixstockDisplayPrice)}, ${json(tx, f.proceedPrice)}, ${json(tx, f.faceValue)},
              ${json(tx, f.seatDetails)}, ${json(tx, f.ticket)}, ${json(tx, f.data)})
      returning id, quantity
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
      select id, ${deliveryId}, 'ticket.add', quantity, null, quantity from created
    )
    select id from created`;
  return row!.id;
}

export type QuantityChange =
  | { found: false }
  | { found: true; status: 'published' | 'deleted'; brokerId: string; before: number; after: number | null };

/** The CTEs `old`, `changed` and `ledger` of a change to one listing (all but Tixstock's holds and
 * releases, which are one flat statement of their own: quantity-deltas.ts): lock the listing, and
 * if it is published (and `when`, a condition over `old.*`, holds) set quantity (and ceiling, and
 * any `extra` assignments) from expressions over `old.*`, writing the ledger row for `deliveryId`
 * or `holdId` (expressions) in the same statement. A deleted listing is a tombstone: `changed`
 * is empty. */
export function listingChangeCtes(
  db: Sql | Tx,
  p: {
    id: string;
    deliveryId: Fragment;
    holdId?: Fragment;
    reason: string;
    requested: number | null;
    quantity: Fragment;
    ceiling: Fragment;
    extra?: Fragment;
    when?: Fragment;
  },
): Fragment {
  return db`
    old as (
      select id, status, broker_id, quantity, quantity_ceiling from listings
       where id = ${isListingId(p.id) ? p.id : null}::bigint for update
    ), changed as (
      update listings l
         set quantity = ${p.quantity}, quantity_ceiling = ${p.ceiling}, updated_at = now() ${p.extra ?? db``}
        from old
       where l.id = old.id and old.status = 'published' ${p.when ? db`and ${p.when}` : db``}
      returning l.id, old.quantity as before, l.quantity as after
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, hold_id, reason, requested, before, after)
      select id, ${p.deliveryId}, ${p.holdId ?? db`null::bigint`}, ${p.reason}, ${p.requested}, before, after from changed
    )`;
}

/** A change to one listing by a delivery already in the log (see listingChangeCtes). */
async function changeListingForDelivery(
  tx: Tx,
  p: Omit<Parameters<typeof listingChangeCtes>[1], 'deliveryId'> & { deliveryId: string },
): Promise<QuantityChange> {
  if (!isListingId(p.id)) return { found: false };
  const [row] = await tx<{ status: 'published' | 'deleted'; broker_id: string; before: number; after: number | null }[]>`
    with ${listingChangeCtes(tx, { ...p, deliveryId: tx`${p.deliveryId}::bigint` })}
    select old.status, old.broker_id, old.quantity as before, changed.after
      from old left join changed using (id)`;
  if (!row) return { found: false };
  return { found: true, status: row.status, brokerId: row.broker_id, before: row.before, after: row.after };
}

/** A release: quantity += n, never above the last absolute quantity Tixstock set (the ceiling);
 * quantity-deltas.ts writes the same rule for Tixstock's releases. */
export const releaseQuantity = (db: Sql | Tx, n: number) => db`least(old.quantity_ceiling, old.quantity + ${n}::int)`;

/** ticket.sold: quantity and first seat are set to what Tixstock says remains. */
export function applySold(tx: Tx, deliveryId: string, id: string, quantity: number, firstSeat: string | null) {
  return changeListingForDelivery(tx, {
    id,
    deliveryId,
    reason: 'ticket.sold',
    requested: quantity,
    quantity: tx`${quantity}::int`,
    ceiling: tx`${quantity}::int`,
    extra: tx`, first_seat = coalesce(${firstSeat}::text, l.first_seat)`,
  });
}

export async function recordSale(
  tx: Tx,
  s: {
    listingId: string;
    deliveryId: string;
    soldQuantity: number;
    quantityAfter: number;
    firstSeat: string | null;
    orderId: string | null;
  },
): Promise<void> {
  await tx`
    insert into listing_sales (listing_id, delivery_id, sold_quantity, quantity_after, first_seat, order_id)
    values (${s.listingId}, ${s.deliveryId}, ${s.soldQuantity}, ${s.quantityAfter}, ${s.firstSeat}, ${s.orderId})`;
}

/** ticket.update: every field replaced; quantity (and ceiling) = quantity_available. */
export function applyUpdate(tx: Tx, deliveryId: string, id: string, f: ListingFields) {
  return changeListingForDelivery(tx, {
    id,
    deliveryId,
    reason: 'ticket.update',
    requested: f.quantity,
    quantity: tx`${f.quantity}::int`,
    ceiling: tx`${f.quantity}::int`,
    extra: tx`, event_id = ${f.eventId}, broker_id = ${f.brokerId}, first_seat = ${f.firstSeat},
              display_price = ${json(tx, f.displayPrice)}, tixstock_display_price = ${json(tx, f.tixstockDisplayPrice)},
              proceed_price = ${json(tx, f.proceedPrice)}, face_value = ${json(tx, f.faceValue)},
              seat_details = ${json(tx, f.seatDetails)}, ticket = ${json(tx, f.ticket)}, data = ${json(tx, f.data)}`,
  });
}

/** ticket.delete: the listing becomes a tombstone with quantity 0. */
export function applyDelete(tx: Tx, deliveryId: string, id: string, reason = 'ticket.delete') {
  return changeListingForDelivery(tx, {
    id,
    deliveryId,
    reason,
    requested: 0,
    quantity: tx`0`,
    ceiling: tx`0`,
    extra: tx`, status = 'deleted', deleted_at = now()`,
  });
}

/** event.cancel: every listing of the event becomes a tombstone. Returns all its listing ids. */
export async function deleteListingsOfEvent(tx: Tx, deliveryId: string, eventId: string): Promise<string[]> {
  const rows = await tx<{ id: string }[]>`
    with old as (
      select id, status, quantity from listings where event_id = ${eventId} order by id for update
    ), changed as (
      update listings l
         set status = 'deleted', quantity = 0, quantity_ceiling = 0, deleted_at = now(), updated_at = now()
        from old
       where l.id = old.id and old.status = 'published'
      returning l.id, old.quantity as before
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
      select id, ${deliveryId}, 'event.cancel', 0, before, 0 from changed
    )
    select id from old order by id`;
  return rows.map((r) => r.id);
}

const LISTING_COLUMNS = [
  'id',
  'event_id',
  'broker_id',
  'status',
  'quantity',
  'first_seat',
  'display_price',
  'proceed_price',
  'face_value',
  'seat_details',
  'ticket',
  'created_at',
  'updated_at',
  'deleted_at',
];

export async function getListing(sql: Sql, id: string) {
  if (!isListingId(id)) return undefined;
  const [row] = await sql`
    select ${sql(LISTING_COLUMNS)}, tixstock_display_price, quantity_ceiling, data from listings where id = ${id}`;
  return row;
}

export interface ListingFilter {
  eventId?: string;
  brokerId?: string;
  status?: string;
  limit: number;
  after?: string;
}

export async function listListings(sql: Sql, f: ListingFilter) {
  return sql`
    select ${sql(LISTING_COLUMNS)} from listings ${pageWhere(sql, { event_id: f.eventId, broker_id: f.brokerId, status: f.status }, f)}`;
}

export async function listingsOfEvent(sql: Sql, eventId: string) {
  return sql`select ${sql(LISTING_COLUMNS)} from listings where event_id = ${eventId} order by id`;
}

/** Tixstock's docs say the holding reseller gets no ticket.hold for its own hold; if it did, the
 * hold would count twice. Rather than guess, a ticket.hold of the same quantity on the same
 * listing within two minutes after one of our holds names that hold, so support sees it. */
const possibleEchoOfOwnHold = (sql: Sql) => sql`
  case when c.reason = 'ticket.hold' then (
    select o.hold_id from listing_quantity_changes o
     where o.listing_id = c.listing_id and o.reason = 'our.hold' and o.requested = c.requested
       and o.id < c.id and o.at >= c.at - interval '2 minutes'
     order by o.id desc limit 1) end`;

/** The ledger of a listing, oldest first. `short` marks a hold or release that moved fewer tickets than
 * `requested` (a hold of 5 on 4 left, a release up to the ceiling). */
export async function quantityChanges(sql: Sql, listingId: string) {
  if (!isListingId(listingId)) return [];
  return sql`
    select c.id, c.delivery_id, c.hold_id, c.reconciliation_id, c.reason, c.requested, c.before, c.after,
           coalesce(c.reason in ('ticket.hold', 'ticket.release') and abs(c.after - c.before) < c.requested, false) as short, c.at,
           ${possibleEchoOfOwnHold(sql)} as possible_echo_of_hold
      from listing_quantity_changes c where c.listing_id = ${listingId} order by c.id`;
}

/** The broker a listing belongs to, or undefined when there is no such listing. */
export async function brokerOfListing(tx: Tx, id: string): Promise<string | undefined> {
  if (!isListingId(id)) return undefined;
  const [row] = await tx<{ broker_id: string }[]>`select broker_id from listings where id = ${id}`;
  return row?.broker_id;
}
