// The reseller's own basket holds. A hold is reserved here first (committed: the listing's row
// lock, quantity -= n, a ledger row naming the hold), Tixstock is called with no lock or
// connection held, and then the hold is confirmed or undone. Each change of a listing's quantity
// here goes through listingChangeCtes: the same row lock and the same ledger as the webhooks'
// changes (Tixstock's own holds and releases included). Lock order is always hold, then listing.
import { type Fragment, pageWhere, type Sql, type Tx } from '../db/connect.js';
import { isSerialId } from '../ids.js';
import { isListingId, listingChangeCtes, releaseQuantity } from './listings.js';

export type HoldStatus = 'pending' | 'active' | 'released' | 'ordered' | 'expired' | 'failed';
export const HOLD_STATUSES: readonly HoldStatus[] = ['pending', 'active', 'released', 'ordered', 'expired', 'failed'];

export interface HoldRow {
  id: string;
  tixstock_hold_id: string | null;
  listing_id: string;
  requested: number;
  quantity: number;
  sold_quantity: number;
  status: HoldStatus;
  expires_at: Date;
  busy: 'release' | 'order' | null;
  busy_until: Date | null;
  order_id: string | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const HOLD_COLUMNS = [
  'id',
  'tixstock_hold_id',
  'listing_id',
  'requested',
  'quantity',
  'sold_quantity',
  'status',
  'expires_at',
  'busy',
  'busy_until',
  'order_id',
  'last_error',
  'created_at',
  'updated_at',
];

export const isHoldId = isSerialId;

const ms = (n: number) => Math.round(n);

export type Reservation =
  | { kind: 'reserved'; hold: HoldRow; before: number; after: number }
  | { kind: 'not_found' }
  | { kind: 'deleted' }
  | { kind: 'not_enough'; available: number };

/** A new hold's id, as an expression: for a caller that records the id (an Idempotency-Key's row)
 * in the statement before the reservation's (see reserveHold's `holdId`). */
export const nextHoldId = (db: Sql | Tx): Fragment => db`nextval('hold_id_seq')`;

/** quantity -= n on a published listing with at least n left, and a pending hold that expires
 * (if its outcome never becomes known) after `expiresInMs`, with its ledger row: one statement.
 * The hold's id is `holdId` when given (taken with nextHoldId), a new one otherwise. */
export async function reserveHold(
  db: Sql | Tx,
  listingId: string,
  n: number,
  expiresInMs: number,
  holdId?: string,
): Promise<Reservation> {
  if (!isListingId(listingId)) return { kind: 'not_found' };
  const change = listingChangeCtes(db, {
    id: listingId,
    deliveryId: db`null::bigint`,
    holdId: db`(select hold_id from ids)`,
    reason: 'our.hold',
    requested: n,
    quantity: db`old.quantity - ${n}::int`,
    ceiling: db`old.quantity_ceiling`,
    when: db`old.quantity >= ${n}::int`,
  });
  const [row] = await db<({ listing_status: string | null; before: number | null; after: number | null } & Partial<HoldRow>)[]>`
    with ids as (
      select ${holdId === undefined ? nextHoldId(db) : db`${holdId}::bigint`} as hold_id
    ), ${change}, hold as (
      insert into holds (id, listing_id, requested, quantity, status, expires_at)
      select (select hold_id from ids), id, ${n}, ${n}, 'pending', now() + ${ms(expiresInMs)} * interval '1 millisecond' from changed
      returning ${db(HOLD_COLUMNS)}
    )
    select old.status as listing_status, old.quantity as before, changed.after, hold.*
      from ids left join old on true left join changed on changed.id = old.id left join hold on true`;
  if (!row || row.listing_status === null) return { kind: 'not_found' };
  if (row.listing_status === 'deleted') return { kind: 'deleted' };
  if (row.after === null || !row.id) return { kind: 'not_enough', available: row.before ?? 0 };
  const { listing_status: _s, before, after, ...hold } = row;
  return { kind: 'reserved', hold: hold as HoldRow, before: before!, after };
}

/** Tixstock holds the tickets: the pending hold becomes active until `expiresAt`. Undefined when
 * it is no longer pending (the sweep expired it meanwhile). */
export async function confirmHold(
  sql: Sql,
  holdId: string,
  tixstockHoldId: string,
  expiresAt: Date,
): Promise<HoldRow | undefined> {
  const [row] = await sql<HoldRow[]>`
    update holds set status = 'active', tixstock_hold_id = ${tixstockHoldId}, expires_at = ${expiresAt}, updated_at = now()
     where id = ${holdId} and status = 'pending'
    returning ${sql(HOLD_COLUMNS)}`;
  return row;
}

/** Puts a hold's remaining tickets back on its listing (never above the ceiling) with a ledger
 * row `reason`, under the hold's lock, then sets the hold's fields. */
async function returnTickets(tx: Tx, h: Pick<HoldRow, 'id' | 'listing_id' | 'quantity'>, n: number, reason: string) {
  if (n <= 0) return;
  await tx`
    with ${listingChangeCtes(tx, {
      id: h.listing_id,
      deliveryId: tx`null::bigint`,
      holdId: tx`${h.id}::bigint`,
      reason,
      requested: n,
      quantity: releaseQuantity(tx, n),
      ceiling: tx`old.quantity_ceiling`,
    })}
    select 1 from changed`;
}

async function lockHold(tx: Tx, holdId: string): Promise<HoldRow | undefined> {
  if (!isHoldId(holdId)) return undefined;
  const [row] = await tx<HoldRow[]>`select ${tx(HOLD_COLUMNS)} from holds where id = ${holdId} for update`;
  return row;
}

/** Tixstock definitely did not hold the tickets: the reservation is undone (ledger row back). */
export async function undoHold(sql: Sql, holdId: string, error: string): Promise<void> {
  await sql.begin(async (tx) => {
    const h = await lockHold(tx, holdId);
    if (h?.status !== 'pending') return;
    await returnTickets(tx, h, h.quantity, 'our.hold.undone');
    await tx`update holds set status = 'failed', quantity = 0, last_error = ${error.slice(0, 2000)}, updated_at = now() where id = ${holdId}`;
  });
}

export type Claim =
  | { kind: 'claimed'; hold: HoldRow }
  | { kind: 'not_found' }
  | { kind: 'refused'; hold: HoldRow; reason: string };

/** Takes the hold for one order/add at Tixstock (releases take no mark: releaseRefusal) until `forMs` from now, if it is
 * active, unexpired, not busy and holds at least `n` (one statement; the busy mark, not a row
 * lock, keeps other calls and the sweep off it while Tixstock answers). An order/add whose answer
 * never came leaves its mark for good: the hold may be sold, so nothing may use it again. */
export async function claimHold(
  db: Sql | Tx,
  holdId: string,
  op: 'release' | 'order',
  n: number | undefined,
  forMs: number,
): Promise<Claim> {
  if (!isHoldId(holdId)) return { kind: 'not_found' };
  const [claimed] = await db<HoldRow[]>`
    update holds set busy = ${op}, busy_until = now() + ${ms(forMs)} * interval '1 millisecond', updated_at = now()
     where id = ${holdId} and status = 'active' and expires_at > now() and (busy is null or (busy = 'release' and busy_until <= now()))
       and quantity >= ${n ?? 1}::int
    returning ${db(HOLD_COLUMNS)}`;
  if (claimed) return { kind: 'claimed', hold: claimed };
  const h = await getHold(db, holdId);
  if (!h) return { kind: 'not_found' };
  const refused = (reason: string): Claim => ({ kind: 'refused', hold: h, reason });
  if (h.status === 'pending') return refused(`hold ${h.id} is not confirmed by Tixstock yet`);
  if (h.status !== 'active') return refused(`hold ${h.id} is ${h.status}`);
  if (h.expires_at.getTime() <= Date.now()) return refused(`hold ${h.id} has expired`);
  if (h.busy && h.busy_until && h.busy_until.getTime() > Date.now()) return refused(`hold ${h.id} has a ${h.busy} in progress`);
  if (h.busy === 'order') {
    return refused(
      `hold ${h.id}: Tixstock's answer to order ${h.order_id ?? ''} was lost; it may be sold, so it can be neither released nor ordered again`,
    );
  }
  return refused(`hold ${h.id} holds ${h.quantity}, not ${n}`);
}

/** The call ended without changing anything at Tixstock (or we chose to keep the tickets held):
 * the hold may be used again. */
export async function clearBusy(sql: Sql, holdId: string, error: string | null): Promise<void> {
  await sql`
    update holds set busy = null, busy_until = null, last_error = coalesce(${error?.slice(0, 2000) ?? null}, last_error), updated_at = now()
     where id = ${holdId}`;
}

/** Records what went wrong with a hold's last call, changing nothing else (a lost answer: the
 * hold keeps its tickets and, for order/add, its busy mark, see expireDueHolds). */
export async function noteHoldError(sql: Sql, holdId: string, error: string, orderId?: string): Promise<void> {
  await sql`
    update holds set last_error = ${error.slice(0, 2000)}, order_id = coalesce(${orderId ?? null}, order_id), updated_at = now()
     where id = ${holdId}`;
}

/** Why a release of `n` (all when undefined) cannot be sent to Tixstock now, or undefined when it
 * can. A release takes no busy mark: Tixstock decides between calls that race on one hold (it
 * refuses a release of tickets no longer held), and applyRelease returns only what is still held. */
export function releaseRefusal(h: HoldRow, n: number | undefined): string | undefined {
  if (h.status === 'pending') return `hold ${h.id} is not confirmed by Tixstock yet`;
  if (h.status !== 'active') return `hold ${h.id} is ${h.status}`;
  if (h.expires_at.getTime() <= Date.now()) return `hold ${h.id} has expired`;
  if (h.busy === 'order') {
    return h.busy_until && h.busy_until.getTime() > Date.now()
      ? `hold ${h.id} has an order in progress`
      : `hold ${h.id}: Tixstock's answer to order ${h.order_id ?? ''} was lost; it may be sold, so it can be neither released nor ordered again`;
  }
  if (h.quantity < (n ?? 1)) return `hold ${h.id} holds ${h.quantity}, not ${n}`;
  return undefined;
}

/** Tixstock released n of the hold: they go back on the listing (never above the ceiling), in
 * one statement, as far as the hold still holds them (the sweep may have expired it meanwhile,
 * or a racing release taken some). */
export async function applyRelease(sql: Sql, hold: Pick<HoldRow, 'id' | 'listing_id'>, n: number): Promise<HoldRow> {
  const [row] = await sql<(HoldRow & { returned: number })[]>`
    with before as (
      select id, least(quantity, ${n}::int) as returned from holds where id = ${hold.id} for update
    ), h as (
      update holds set quantity = quantity - before.returned,
                       status = case when quantity - before.returned = 0 then 'released' else status end,
                       busy = case when busy = 'release' then null else busy end,
                       busy_until = case when busy = 'release' then null else busy_until end, updated_at = now()
        from before
       where holds.id = before.id and holds.status = 'active' and before.returned > 0
      returning ${sql(HOLD_COLUMNS.map((c) => `holds.${c}`))}, before.returned
    ), ${listingChangeCtes(sql, {
      id: hold.listing_id,
      deliveryId: sql`null::bigint`,
      holdId: sql`${hold.id}::bigint`,
      reason: 'our.release',
      requested: n,
      quantity: sql`least(old.quantity_ceiling, old.quantity + (select returned from h))`,
      ceiling: sql`old.quantity_ceiling`,
      when: sql`exists (select 1 from h)`,
    })}
    select * from h`;
  if (!row) return (await getHold(sql, hold.id))!;
  const { returned: _r, ...h } = row;
  return h;
}

/** Tixstock took our order for n of the hold: the tickets stay off the listing and its ceiling
 * drops by n, so no release webhook can bring them back. What the hold still holds beyond n
 * stays off until the hold expires. Runs in the caller's transaction (which writes the order). */
export async function applyOwnSale(tx: Tx, holdId: string, n: number, orderId: string): Promise<HoldRow> {
  const h = (await lockHold(tx, holdId))!;
  await tx`
    with ${listingChangeCtes(tx, {
      id: h.listing_id,
      deliveryId: tx`null::bigint`,
      holdId: tx`${h.id}::bigint`,
      reason: 'our.sale',
      requested: n,
      quantity: tx`old.quantity`,
      ceiling: tx`greatest(old.quantity, old.quantity_ceiling - ${n}::int)`,
    })}
    select 1 from changed`;
  const [row] = await tx<HoldRow[]>`
    update holds set status = 'ordered', sold_quantity = ${n}, quantity = quantity - ${n}::int, order_id = ${orderId},
                     busy = null, busy_until = null, updated_at = now()
     where id = ${holdId}
    returning ${tx(HOLD_COLUMNS)}`;
  return row!;
}

/**
 * Expires holds whose time is up (Tixstock has released them by itself), one transaction each,
 * skipping rows another process is working on: safe to run on every process at once, again
 * and again. Their tickets come back on the listing, except after an order/add whose outcome
 * was never learned (`busy` = 'order' left behind): those tickets may be sold, so they stay
 * off (a ledger row says so) until a reconciliation with Tixstock's quantities.
 */
export async function expireDueHolds(sql: Sql, limit = 100): Promise<number> {
  let expired = 0;
  while (expired < limit) {
    const done = await sql.begin(async (tx) => {
      const [h] = await tx<HoldRow[]>`
        select ${tx(HOLD_COLUMNS)} from holds
         where quantity > 0 and status in ('pending', 'active', 'ordered') and expires_at <= now()
           and (busy_until is null or busy_until < now())
         order by expires_at
         limit 1
         for update skip locked`;
      if (!h) return false;
      const orderUnknown = h.busy === 'order';
      if (orderUnknown) {
        await tx`
          with ${listingChangeCtes(tx, {
            id: h.listing_id,
            deliveryId: tx`null::bigint`,
            holdId: tx`${h.id}::bigint`,
            reason: 'our.order.unknown',
            requested: h.quantity,
            quantity: tx`old.quantity`,
            ceiling: tx`old.quantity_ceiling`,
          })}
          select 1 from changed`;
      } else {
        await returnTickets(tx, h, h.quantity, 'our.hold.expired');
      }
      await tx`
        update holds set status = case when status = 'ordered' then 'ordered' else 'expired' end, quantity = 0,
                         busy = null, busy_until = null, updated_at = now(),
                         last_error = case when ${orderUnknown} then 'order/add outcome unknown: tickets kept off until reconciled' else last_error end
         where id = ${h.id}`;
      return true;
    });
    if (!done) break;
    expired++;
  }
  return expired;
}

export async function getHold(db: Sql | Tx, id: string): Promise<HoldRow | undefined> {
  if (!isHoldId(id)) return undefined;
  const [row] = await db<HoldRow[]>`select ${db(HOLD_COLUMNS)} from holds where id = ${id}`;
  return row;
}

export async function listHolds(sql: Sql, f: { listingId?: string; status?: HoldStatus; limit: number; after?: string }) {
  if (f.listingId !== undefined && !isListingId(f.listingId)) return [];
  return sql<HoldRow[]>`
    select ${sql(HOLD_COLUMNS)} from holds ${pageWhere(sql, { listing_id: f.listingId, status: f.status }, f)}`;
}
