// One of Tixstock's listings (tickets/get) against our row: which fields differ, as values both
// sides can be shown in (money as {currency, amount}, seats as four strings).
import type { ComparedListing } from '../inventory/reconcile-writes.js';
import { normalizeAmount } from '../money.js';
import type { TixstockListing } from '../tixstock/contract.js';
import { eventResource, listingResource, looseId, type ListingResource } from '../tixstock/resources.js';

export type Action = 'reported' | 'repaired' | 'imported' | 'skipped';

export interface Difference {
  listing_id: string;
  /** A listing field, or `listing` (one side lacks it) or `resource` (Tixstock's is unreadable). */
  field: string;
  ours: unknown;
  tixstock: unknown;
  action: Action;
  note?: string | null;
}

export type FieldDifference = Pick<Difference, 'field' | 'ours' | 'tixstock'>;

export type ReadListing = { ok: true; listing: ListingResource } | { ok: false; errors: string[] };

export const idOf = (raw: TixstockListing): string | null => {
  const id = raw.id === null || raw.id === undefined ? '' : String(raw.id).trim();
  return id === '' ? null : id;
};

/** Tixstock's loose booleans ("true"/"false", 1/0, true/false), read as looseBoolean does
 * (without zod: this runs for every listing of every page). */
const truthy = (v: unknown): boolean | undefined => {
  if (typeof v === 'boolean' || v === undefined || v === null) return v ?? undefined;
  const s = String(v).trim().toLowerCase();
  return s === 'true' || s === '1' || s === 'yes'
    ? true
    : s === 'false' || s === '0' || s === 'no' || s === ''
      ? false
      : undefined;
};

/** Tickets/get returns listings whatever their published state: a listing is deleted there when
 * it says so (`published` false, a `status` of deleted, or `deleted` true). */
function statusOf(raw: TixstockListing): 'published' | 'deleted' {
  if (truthy(raw.published) === false || truthy(raw.deleted) === true || truthy(raw.is_deleted) === true) return 'deleted';
  if (typeof raw.status === 'string' && /^(deleted|unpublished|inactive)$/i.test(raw.status.trim())) return 'deleted';
  return 'published';
}

// The webhooks' listing resource; tickets/get may name the event by `event_id` only.
const tixstockListing = listingResource
  .extend({ event: eventResource.optional(), event_id: looseId.optional() })
  .refine((l) => l.event !== undefined || l.event_id !== undefined, {
    message: 'event (or event_id) is required',
    path: ['event'],
  });

/** One of Tixstock's listings in full, as the webhooks' schema reads it. */
export function readListing(raw: TixstockListing): ReadListing {
  const parsed = tixstockListing.safeParse(raw);
  if (!parsed.success)
    return { ok: false, errors: parsed.error.issues.map((i) => `${i.path.join('.') || 'listing'}: ${i.message}`) };
  const l = parsed.data;
  const eventId = l.event_id ?? l.event!.id;
  // An event known only by id is created with that id as its name until event.update tells more.
  const event = l.event && l.event.id === eventId ? l.event : { id: eventId, name: `event ${eventId}` };
  return { ok: true, listing: { ...l, event } };
}

type MoneyLike = { currency?: unknown; amount?: unknown } | null | undefined;
function money(m: unknown): { currency: string; amount: string } | null {
  const v = m as MoneyLike;
  if (!v || typeof v !== 'object' || v.amount === undefined || v.amount === null) return null;
  const amount = String(v.amount).trim();
  return {
    currency: String(v.currency ?? '')
      .trim()
      .toUpperCase(),
    amount: /^\d{1,12}(\.\d{1,6})?$/.test(amount) ? normalizeAmount(amount) : amount,
  };
}

const text = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : String(v).trim());

function seats(details: unknown, firstSeat: unknown) {
  const d = (details && typeof details === 'object' ? details : {}) as Record<string, unknown>;
  return { category: text(d.category), section: text(d.section), row: text(d.row), first_seat: text(firstSeat) };
}

function quantity(v: unknown): unknown {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : undefined;
  return s !== undefined && /^\d{1,9}$/.test(s) ? Number(s) : (v ?? null);
}

/** The compared fields of one of Tixstock's listings, read without the full schema: most
 * listings agree, and parsing every one with zod would cost more than fetching it. Money and
 * seats are normalised (as the webhook schemas store them) only where the plain values differ.
 * A listing that differs is read in full (readListing). */
export interface TixstockView {
  status: 'published' | 'deleted';
  quantity: unknown;
  broker_id: string | null;
  event_id: string | null;
  display_price: unknown;
  proceed_price: unknown;
  face_value: unknown;
  seat_details: Record<string, unknown>;
}

export function viewOf(raw: TixstockListing): TixstockView {
  const tickets = (raw.number_of_tickets_for_sale ?? {}) as Record<string, unknown>;
  const event = (raw.event ?? {}) as Record<string, unknown>;
  const details = raw.seat_details;
  return {
    status: statusOf(raw),
    quantity: quantity(tickets.quantity_available),
    broker_id: text(raw.broker_id),
    event_id: text(raw.event_id ?? event.id),
    display_price: raw.display_price,
    proceed_price: raw.proceed_price,
    face_value: raw.face_value,
    seat_details: (details && typeof details === 'object' ? details : {}) as Record<string, unknown>,
  };
}

/** Equal money: the same strings (the usual case), or the same once normalised. */
function sameMoney(a: unknown, b: unknown): boolean {
  const x = a as MoneyLike;
  const y = b as MoneyLike;
  if (
    x &&
    y &&
    typeof x === 'object' &&
    typeof y === 'object' &&
    x.amount === y.amount &&
    x.currency === y.currency &&
    typeof x.amount === 'string'
  )
    return true;
  const m = money(a);
  const n = money(b);
  return m === null || n === null ? m === n : m.amount === n.amount && m.currency === n.currency;
}

const SEAT_KEYS = ['category', 'section', 'row'] as const;

function sameSeats(ours: unknown, firstSeat: unknown, theirs: Record<string, unknown>): boolean {
  const o = (ours && typeof ours === 'object' ? ours : {}) as Record<string, unknown>;
  return text(firstSeat) === text(theirs.first_seat) && SEAT_KEYS.every((k) => text(o[k]) === text(theirs[k]));
}

/** The fields in which ours differs from Tixstock's. A listing deleted on one side differs only
 * in `status`: the other fields of a tombstone do not matter. */
export function compareListing(ours: ComparedListing, theirs: TixstockView): FieldDifference[] {
  if (ours.status !== theirs.status) return [{ field: 'status', ours: ours.status, tixstock: theirs.status }];
  if (ours.status === 'deleted') return [];
  const found: FieldDifference[] = [];
  if (ours.quantity !== theirs.quantity) found.push({ field: 'quantity', ours: ours.quantity, tixstock: theirs.quantity });
  if (ours.broker_id !== theirs.broker_id) found.push({ field: 'broker_id', ours: ours.broker_id, tixstock: theirs.broker_id });
  if (ours.event_id !== theirs.event_id) found.push({ field: 'event_id', ours: ours.event_id, tixstock: theirs.event_id });
  for (const [field, a, b] of [
    ['display_price', ours.tixstock_display_price, theirs.display_price],
    ['proceed_price', ours.proceed_price, theirs.proceed_price],
    ['face_value', ours.face_value, theirs.face_value],
  ] as const) {
    if (!sameMoney(a, b)) found.push({ field, ours: money(a), tixstock: money(b) });
  }
  if (!sameSeats(ours.seat_details, ours.first_seat, theirs.seat_details)) {
    found.push({
      field: 'seat_details',
      ours: seats(ours.seat_details, ours.first_seat),
      tixstock: seats(theirs.seat_details, theirs.seat_details.first_seat),
    });
  }
  return found;
}
