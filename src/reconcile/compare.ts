// One of Tixstock's listings (tickets/get) against our row: which fields differ, as values both
// sides can be shown in (money as {currency, amount}, seats as four strings).
import type { ComparedListing } from '../inventory/reconcile-writes.js';
import { normalizeAmount } from '../money.js';
import type { TixstockListing } from '../tixstock/contract.js';
import { eventResource, listingResource, looseBoolean, looseId, type ListingResource } from '../webhooks/v1/schemas.js';

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

export type ReadListing =
  | { ok: true; id: string | null; listing: ListingResource; status: 'published' | 'deleted' }
  | { ok: false; id: string | null; errors: string[] };

const idOf = (raw: TixstockListing): string | null => {
  const id = raw.id === null || raw.id === undefined ? '' : String(raw.id).trim();
  return id === '' ? null : id;
};

const truthy = (v: unknown): boolean | undefined => {
  const r = looseBoolean.safeParse(v);
  return r.success ? r.data : undefined;
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
  .refine((l) => l.event !== undefined || l.event_id !== undefined, { message: 'event (or event_id) is required', path: ['event'] });

export function readListing(raw: TixstockListing): ReadListing {
  const id = idOf(raw);
  const parsed = tixstockListing.safeParse(raw);
  if (!parsed.success) return { ok: false, id, errors: parsed.error.issues.map((i) => `${i.path.join('.') || 'listing'}: ${i.message}`) };
  const l = parsed.data;
  const eventId = l.event_id ?? l.event!.id;
  // An event known only by id is created with that id as its name until event.update tells more.
  const event = l.event && l.event.id === eventId ? l.event : { id: eventId, name: `event ${eventId}` };
  return { ok: true, id, listing: { ...l, event }, status: statusOf(raw) };
}

type MoneyLike = { currency?: unknown; amount?: unknown } | null | undefined;
function money(m: unknown): { currency: string; amount: string } | null {
  const v = m as MoneyLike;
  if (!v || v.amount === undefined || v.amount === null) return null;
  const amount = String(v.amount);
  return { currency: String(v.currency ?? '').toUpperCase(), amount: /^\d+(\.\d+)?$/.test(amount) ? normalizeAmount(amount) : amount };
}

const text = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : String(v).trim());

function seats(details: unknown, firstSeat: unknown) {
  const d = (details ?? {}) as Record<string, unknown>;
  return { category: text(d.category), section: text(d.section), row: text(d.row), first_seat: text(firstSeat) };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The fields in which ours differs from Tixstock's. A listing deleted on one side differs only
 * in `status`: the other fields of a tombstone do not matter. */
export function compareListing(ours: ComparedListing, theirs: ListingResource, theirStatus: 'published' | 'deleted'): FieldDifference[] {
  if (ours.status !== theirStatus) return [{ field: 'status', ours: ours.status, tixstock: theirStatus }];
  if (ours.status === 'deleted') return [];
  const pairs: [string, unknown, unknown][] = [
    ['quantity', ours.quantity, theirs.number_of_tickets_for_sale.quantity_available],
    ['broker_id', ours.broker_id, theirs.broker_id],
    ['event_id', ours.event_id, theirs.event.id],
    ['display_price', money(ours.tixstock_display_price), money(theirs.display_price)],
    ['proceed_price', money(ours.proceed_price), money(theirs.proceed_price)],
    ['face_value', money(ours.face_value), money(theirs.face_value)],
    ['seat_details', seats(ours.seat_details, ours.first_seat), seats(theirs.seat_details, theirs.seat_details?.first_seat)],
  ];
  return pairs.filter(([, a, b]) => !same(a, b)).map(([field, a, b]) => ({ field, ours: a, tixstock: b }));
}
