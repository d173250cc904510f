// The simulator's Tixstock: listings, holds that expire, orders and closed brokers, with the
// rules of reseller-api.md 3.x. What the docs leave open is chosen here and said in README:
// an expired or used hold is unknown (404), a repeated order_id is refused, selling fewer than
// held gives the rest back.
import { randomBytes } from 'node:crypto';

/** A refusal in one of Tixstock's two error shapes. */
export class SimError extends Error {
  constructor(
    readonly status: number,
    readonly errors: { title: string; code: string } | string[],
  ) {
    super(Array.isArray(errors) ? errors.join('; ') : errors.title);
  }
}

export const MESSAGES = {
  '100': 'Invalid request please add a Bearer Token to your header.',
  '106': 'Invalid quantity you must enter a whole number with a minimum value of 1.',
  '108': 'The on hold quantity cannot be greater then the listing quantity.',
  '109': 'Invalid quantity you cannot release more tickets than the on hold amount.',
  '401': 'Invalid Bearer Token.',
  '404': 'Sorry the resource cannot be found.',
  '404-endpoint': 'Invalid endpoint please consult the documentation for available endpoints.',
  '405': 'Method not allowed.',
  '429': 'Too many request made, subsequent requests will be blocked for the next minute.',
  '500': 'Sorry there was an internal error please try again.',
  '503': 'Tixstock API is currently in maintenance mode.',
} as const;

const fault = (status: number, code: keyof typeof MESSAGES) =>
  new SimError(status, { title: MESSAGES[code], code: code.slice(0, 3) });

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
/** A 26-character lowercase ULID (48-bit time, 80 random bits), like Tixstock's hold and request ids. */
export function ulid(now = Date.now()): string {
  let time = '';
  for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  const rand = randomBytes(16);
  let tail = '';
  for (let i = 0; i < 16; i++) tail += CROCKFORD[rand[i]! % 32];
  return time + tail;
}

/** A listing resource like the ticket.add example (event 7004512, broker 5512, GBP). */
export function listingResource(quantity: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: null,
    broker_id: '5512',
    ticket: {
      general_admission: 'false',
      type: 'Eticket',
      allow_last_minute_sales: 'true',
      split_type: 'No Preferences',
      eticket: [],
      upload_later: 'true',
    },
    number_of_tickets_for_sale: { quantity_available: quantity, quantity_sold: 0, display_quantity: quantity, split_quantity: 0 },
    seat_details: { category: 'Balcony', section: 'Balcony Left', row: 'F', first_seat: '21' },
    face_value: { currency: 'GBP', amount: '45.00' },
    display_price: { currency: 'GBP', amount: '59.00' },
    proceed_price: { currency: 'GBP', amount: '52.00' },
    restrictions_benefits: { options: [], other: '' },
    delivery: { type: 'E-Ticket', hand_delivered: 'false', ready_shipped: 'false', shipped_date_or_date_in_hand: '2027-03-01' },
    event: {
      id: '7004512',
      name: 'Northern Lights Orchestra',
      currency: 'GBP',
      commission_percentage_fee: '12.50',
      description: 'An evening at Leeds Town Hall',
      datetime: '2027-03-14T19:30:00+0000',
      status: 'Active',
      venue: {
        name: 'Leeds Town Hall',
        address_line_1: 'The Headrow',
        address_line_2: '',
        city: 'Leeds',
        state: 'WYK',
        postcode: 'LS1 3AD',
        country_code: 'GB',
      },
      use_tixstock_venue_details: 'false',
      venue_details: [],
      performers: [{ id: '88120', name: 'Northern Lights Orchestra' }],
    },
    published: 'true',
    ...overrides,
  };
}

export interface SimListing {
  /** Tixstock's own key for the listing (the simulator's), stable before we give it our id. */
  key: string;
  /** Our listing id: null until the service has answered ticket.add. */
  id: string | null;
  brokerId: string;
  eventId: string;
  /** What can still be held or sold. */
  quantity: number;
  sold: number;
  /** The rest of the listing resource as tickets/get returns it (ticket, seat_details, prices...). */
  resource: Record<string, unknown>;
}

export interface SimHold {
  holdId: string;
  listingKey: string;
  listingId: string;
  /** Still on hold (a partial release lowers it). */
  quantity: number;
  createdAt: number;
  expiresAt: number;
  state: 'held' | 'released' | 'ordered' | 'expired';
}

export interface SimOrder {
  orderId: string;
  holdId: string;
  listingId: string;
  quantity: number;
  status: string;
  body: Record<string, unknown>;
  updates: Record<string, unknown>[];
}

export interface PutListing {
  /** Our listing id; omit or null for a listing assigned but not yet published to us. */
  id?: string | null;
  quantity: number;
  key?: string;
  brokerId?: string;
  eventId?: string;
  sold?: number;
  resource?: Record<string, unknown>;
}

const positiveInt = (v: unknown): number | undefined => {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : undefined;
};

export class SimState {
  readonly listings = new Map<string, SimListing>();
  readonly holds = new Map<string, SimHold>();
  readonly orders = new Map<string, SimOrder>();
  readonly closedBrokers: string[] = [];
  /** Holds still held, so that expiry looks at those only (a long run keeps every hold). */
  private readonly live = new Set<SimHold>();
  /** Our listing id -> Tixstock's key. */
  private readonly keyOfId = new Map<string, string>();
  private nextKey = 1;

  constructor(
    private readonly holdMs: number,
    readonly now: () => number = Date.now,
  ) {}

  reset(): void {
    this.listings.clear();
    this.holds.clear();
    this.live.clear();
    this.keyOfId.clear();
    this.orders.clear();
    this.closedBrokers.length = 0;
  }

  putListing(p: PutListing): SimListing {
    const existing = p.key ? this.listings.get(p.key) : p.id ? this.byId(p.id) : undefined;
    const key = existing?.key ?? p.key ?? `tx-${this.nextKey++}`;
    const listing: SimListing = {
      key,
      id: p.id === undefined ? (existing?.id ?? null) : p.id,
      brokerId: p.brokerId ?? existing?.brokerId ?? '5512',
      eventId: p.eventId ?? existing?.eventId ?? '7004512',
      quantity: p.quantity,
      sold: p.sold ?? existing?.sold ?? 0,
      resource: p.resource ?? existing?.resource ?? {},
    };
    if (existing?.id && existing.id !== listing.id) this.keyOfId.delete(existing.id);
    if (listing.id) this.keyOfId.set(listing.id, key);
    this.listings.set(key, listing);
    return listing;
  }

  byId(id: string): SimListing | undefined {
    const key = this.keyOfId.get(id);
    return key === undefined ? undefined : this.listings.get(key);
  }

  /** Holds past their time go back to their listing, as Tixstock's automatic release does. */
  expire(): void {
    const now = this.now();
    for (const h of this.live) {
      if (h.expiresAt <= now) {
        h.state = 'expired';
        this.live.delete(h);
        const l = this.listings.get(h.listingKey);
        if (l) l.quantity += h.quantity;
      }
    }
  }

  private liveHold(holdId: string): SimHold {
    this.expire();
    const h = this.holds.get(holdId);
    if (h?.state !== 'held') throw fault(404, '404');
    return h;
  }

  hold(listingId: string, quantityIn: unknown): { listing: SimListing; hold: SimHold } {
    this.expire();
    const listing = this.byId(listingId);
    if (!listing) throw fault(404, '404');
    const quantity = positiveInt(quantityIn);
    if (quantity === undefined) throw fault(400, '106');
    if (quantity > listing.quantity) throw fault(400, '108');
    const now = this.now();
    const hold: SimHold = {
      holdId: ulid(now),
      listingKey: listing.key,
      listingId,
      quantity,
      createdAt: now,
      expiresAt: now + this.holdMs,
      state: 'held',
    };
    listing.quantity -= quantity;
    this.holds.set(hold.holdId, hold);
    this.live.add(hold);
    return { listing, hold };
  }

  release(holdId: string, quantityIn: unknown): { listing: SimListing; hold: SimHold; released: number } {
    const hold = this.liveHold(holdId);
    const quantity = positiveInt(quantityIn);
    if (quantity === undefined) throw fault(400, '106');
    if (quantity > hold.quantity) throw fault(400, '109');
    const listing = this.listings.get(hold.listingKey)!;
    hold.quantity -= quantity;
    listing.quantity += quantity;
    if (hold.quantity === 0) {
      hold.state = 'released';
      this.live.delete(hold);
    }
    return { listing, hold, released: quantity };
  }

  addOrder(holdId: string, soldIn: unknown, body: Record<string, unknown>, validationStatus: number): SimOrder {
    const missing: string[] = [];
    for (const f of ['order_id', 'order_status', 'datetime', 'currency'] as const) {
      if (typeof body[f] !== 'string' || body[f] === '') missing.push(`The ${f.replace('_', ' ')} field is required.`);
    }
    const customer = body.customer as Record<string, unknown> | undefined;
    if (!customer || typeof customer !== 'object') missing.push('The customer field is required.');
    else if (typeof customer.id !== 'string' || customer.id === '') missing.push('The customer id field is required.');
    if (missing.length) throw new SimError(validationStatus, missing);
    const orderId = body.order_id as string;
    if (this.orders.has(orderId)) throw new SimError(validationStatus, ['The order id has already been taken.']);
    const hold = this.liveHold(holdId);
    const sold = positiveInt(soldIn);
    if (sold === undefined) throw fault(400, '106');
    if (sold > hold.quantity) throw fault(400, '109');
    const listing = this.listings.get(hold.listingKey)!;
    listing.sold += sold;
    listing.quantity += hold.quantity - sold;
    hold.quantity = sold;
    hold.state = 'ordered';
    this.live.delete(hold);
    const order: SimOrder = {
      orderId,
      holdId,
      listingId: hold.listingId,
      quantity: sold,
      status: body.order_status as string,
      body,
      updates: [],
    };
    this.orders.set(orderId, order);
    return order;
  }

  updateOrder(orderId: string, body: Record<string, unknown>, validationStatus: number): SimOrder {
    const order = this.orders.get(orderId);
    if (!order) throw fault(404, '404');
    const status = body.order_status;
    if (
      (typeof status !== 'string' || status === '') &&
      (typeof body.shipping_address !== 'object' || body.shipping_address === null)
    ) {
      throw new SimError(validationStatus, ['The order status field is required when shipping address is not present.']);
    }
    if (order.status === 'Commissionable')
      throw new SimError(400, { title: 'A Commissionable order can no longer be updated.', code: '105' });
    if (typeof status === 'string' && status !== '') order.status = status;
    order.updates.push(body);
    return order;
  }

  closeBroker(brokerId: string): void {
    if (!this.closedBrokers.includes(brokerId)) this.closedBrokers.push(brokerId);
  }

  /** A listing as tickets/get shows it: the whole listing resource (the example's fields where
   * the listing was put without them), with its current quantities. */
  resourceOf(l: SimListing): Record<string, unknown> {
    const fallback = listingResource(l.quantity);
    const r = { ...fallback, ...l.resource };
    const tickets = (r.number_of_tickets_for_sale ?? {}) as Record<string, unknown>;
    const event = l.resource.event ? r.event : { ...(fallback.event as Record<string, unknown>), id: l.eventId };
    return {
      ...r,
      id: l.id,
      broker_id: l.brokerId,
      event,
      number_of_tickets_for_sale: {
        ...tickets,
        quantity_available: l.quantity,
        quantity_sold: l.sold,
        display_quantity: l.quantity,
      },
    };
  }

  /** The order resource (reseller-api.md 3.6, as modelled on pf's get-order). */
  orderResource(o: SimOrder): Record<string, unknown> {
    const customer = (o.body.customer ?? {}) as Record<string, unknown>;
    return {
      id: o.orderId,
      date: o.body.datetime,
      customer,
      items: [{ listing_id: o.listingId, quantity: o.quantity }],
      quantity: o.quantity,
      currency: o.body.currency,
      status: o.status,
      shipping_tracking_id: null,
      shipping_label: null,
    };
  }

  /** Listings in a stable order (Tixstock's key) for paging. */
  list(filter: { listingId?: string; eventId?: string }): SimListing[] {
    this.expire();
    return [...this.listings.values()].filter(
      (l) =>
        (filter.listingId === undefined || l.id === filter.listingId) &&
        (filter.eventId === undefined || l.eventId === filter.eventId),
    );
  }
}
