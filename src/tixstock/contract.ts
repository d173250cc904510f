// The shapes shared by Tixstock's reseller API client (client.ts), the simulator (simulator.ts)
// and their callers (sales/, reconcile/). Facts behind them: README "Tixstock's reseller API".
import { z } from 'zod';

/** Why a call to Tixstock did not succeed, and so what our caller is told:
 * - conflict: Tixstock's codes 106/108/109 (bad quantity, more than is listed or held) -> 409
 * - not_found: 404, Tixstock does not know the listing, hold or order -> 404/409, reconcile
 * - refused: any other 4xx, or a 2xx whose `errors` is not empty -> 502, its messages passed on
 * - config: 401/403 and codes 100/102/103/110/111 (token, IP) -> 503, logged loudly, never retried
 * - rate_limited: 429 (the client pauses every call for 60 s) or our own limit's queue is full -> 503
 * - unavailable: 5xx or no connection: the call was not applied -> 503
 * - unknown_outcome: sent but no answer (timeout, reset): it may have been applied -> 503, and
 *   the caller must not assume either way (hold and order/add are never retried blindly). */
export type TixstockErrorKind =
  | 'conflict'
  | 'not_found'
  | 'refused'
  | 'config'
  | 'rate_limited'
  | 'unavailable'
  | 'unknown_outcome';

export class TixstockError extends Error {
  constructor(
    readonly kind: TixstockErrorKind,
    /** Tixstock's messages, both of its error shapes normalised into one list. */
    readonly messages: string[],
    readonly httpStatus?: number,
    /** Tixstock's own code (a string such as "108"), when it sent one. */
    readonly code?: string,
    readonly requestId?: string,
  ) {
    super(
      `Tixstock ${kind}${httpStatus ? ` (HTTP ${httpStatus}${code ? `, code ${code}` : ''})` : ''}: ${messages.join('; ') || 'no message'}`,
    );
  }
}

/** A successful reply: 2xx and no non-empty `errors`. */
export interface TixstockReply<T> {
  status: number;
  data: T;
  meta: Record<string, unknown>;
  message?: string;
  links?: { next?: string | null; [k: string]: unknown };
  /** meta.request_id: the only correlation id Tixstock gives. */
  requestId?: string;
}

export const customerSchema = z.looseObject({
  id: z.string().min(1),
  first_name: z.string().optional(),
  last_name: z.string().optional(),
  email_address: z.string().optional(),
  dob: z.string().optional(),
  national_id: z.string().optional(),
});

/** The body of order/add. */
export const addOrderBodySchema = z.looseObject({
  order_id: z.string().min(1),
  order_status: z.string().min(1),
  datetime: z.string().min(1),
  currency: z.string().min(1),
  customer: customerSchema,
});
export type AddOrderBody = z.infer<typeof addOrderBodySchema>;

/** A listing as tickets/get returns it: the listing resource of the ticket.add/ticket.update
 * webhooks, `id` = our listing id, or empty/null when not yet published to us. */
export type TixstockListing = Record<string, unknown> & { id?: string | null };

export interface TicketsQuery {
  page: number;
  /** At most 50 (Tixstock's maximum); the client sends 50 when unset. */
  perPage?: number;
  listingId?: string;
}

/** The reseller API calls we make (README, "Tixstock's reseller API"). Every method resolves with a TixstockReply or rejects with a
 * TixstockError; nothing else escapes. None retries hold or addOrder. */
export interface TixstockClient {
  /** POST tickets/hold/{listing_id} {"quantity"}: data.quantity_available, meta.hold_id. */
  hold(listingId: string, quantity: number): Promise<TixstockReply<{ quantity_available: number }> & { holdId: string }>;
  /** POST to the configured release template (TIXSTOCK_RELEASE_PATH), body {"hold_id", "release_quantity"}. */
  release(holdId: string, quantity: number): Promise<TixstockReply<{ quantity_available: number }>>;
  /** POST order/add/{hold_id}/{sold_quantity}. */
  addOrder(holdId: string, soldQuantity: number, body: AddOrderBody): Promise<TixstockReply<unknown>>;
  /** POST order/update/{order_id} {"order_status", ...}. */
  updateOrder(orderId: string, body: { order_status: string } & Record<string, unknown>): Promise<TixstockReply<unknown>>;
  /** POST broker/close/{broker_id}. */
  closeBroker(brokerId: string): Promise<TixstockReply<unknown>>;
  /** GET tickets/get?per_page=&page=(&listing_id=). */
  getTickets(q: TicketsQuery): Promise<TixstockReply<TixstockListing[]>>;
}
