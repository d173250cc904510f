// The reseller's own sales: basket holds, releases and orders, at Tixstock and here.
//
// Each call is three steps, and no database lock or connection is held while Tixstock answers:
// 1. a committed transaction that reserves (hold: the tickets come off the listing; release and
//    order: the hold is marked busy so that only one call at a time uses it), together with the
//    Idempotency-Key's row;
// 2. the call to Tixstock;
// 3. a transaction that confirms (hold active, tickets back, order and sale recorded) or undoes
//    it on a definite refusal. When the answer is lost (timeout, reset) nothing is undone: the
//    tickets stay off here until the hold would have expired at Tixstock (the sweep,
//    expireDueHolds, then brings them back), so the local inventory never offers tickets that
//    Tixstock may be holding for us. A process killed at any step leaves a reservation that the
//    sweep resolves the same way.
import type { Config } from '../config.js';
import type { Fragment, Sql, Tx } from '../db/connect.js';
import {
  applyOwnSale,
  applyRelease,
  claimHold,
  clearBusy,
  confirmHold,
  getHold,
  isHoldId,
  nextHoldId,
  noteHoldError,
  releaseRefusal,
  reserveHold,
  undoHold,
  type HoldRow,
} from '../inventory/holds.js';
import { holdOfOrder, recordOwnSale } from '../inventory/orders.js';
import { log } from '../log.js';
import { TixstockError, type TixstockClient, type TixstockErrorKind } from '../tixstock/contract.js';
import { claimKey, forgetKey, storeAnswer, type IdempotencyKey, type StoredAnswer } from './idempotency.js';

export interface SalesDeps {
  sql: Sql;
  config: Config;
  tixstock: TixstockClient;
}

/** What a sales call answers: status, JSON body, and Retry-After seconds for a 503. */
export interface Answer extends StoredAnswer {
  retryAfter?: number;
}

/** A hold as GET /api/holds/:id answers it (replies.ts `hold`), with what support needs to explain it. */
export function holdView(h: HoldRow) {
  return {
    id: h.id,
    tixstock_hold_id: h.tixstock_hold_id,
    listing_id: h.listing_id,
    quantity: h.quantity,
    status: h.status,
    expires_at: h.expires_at,
    order_id: h.order_id,
    created_at: h.created_at,
    updated_at: h.updated_at,
    requested: h.requested,
    sold_quantity: h.sold_quantity,
    last_error: h.last_error,
  };
}

const failure = (
  status: number,
  message: string,
  errors: string[] = [message],
  extra: Record<string, unknown> = {},
  retryAfter?: number,
): Answer => ({ status, body: { success: false, message, errors, ...extra }, retryAfter });

/** Tixstock's definite answers that change nothing, as our status (README, "Our own sales"). */
function refusalAnswer(err: TixstockError, what: string, notFoundStatus: number, extra: Record<string, unknown>): Answer {
  const messages = err.messages.length ? err.messages : [err.message];
  const byKind: Record<Exclude<TixstockErrorKind, 'unknown_outcome'>, () => Answer> = {
    conflict: () => failure(409, `Tixstock refused the ${what}: ${messages.join('; ')}`, messages, extra),
    not_found: () =>
      failure(
        notFoundStatus,
        `Tixstock does not know the ${what}'s ${notFoundStatus === 404 ? 'listing' : 'hold'}`,
        messages,
        extra,
      ),
    refused: () => failure(502, `Tixstock refused the ${what}`, messages, extra),
    config: () =>
      failure(
        503,
        `Tixstock rejected our credentials or address (configuration); the ${what} was not made`,
        ['tixstock: configuration error'],
        extra,
        60,
      ),
    rate_limited: () => failure(503, `Tixstock's rate limit: the ${what} was not sent; retry in a minute`, messages, extra, 60),
    unavailable: () => failure(503, `Tixstock is unreachable; the ${what} was not made`, messages, extra, 5),
  };
  return byKind[err.kind as Exclude<TixstockErrorKind, 'unknown_outcome'>]();
}

/** Thrown inside a reservation's transaction to roll it back (Idempotency-Key row included) and
 * answer: nothing was changed, so nothing is remembered. */
class LocalAnswer extends Error {
  constructor(readonly answer: Answer) {
    super('answered without calling Tixstock');
  }
}

async function rollbackWith<T>(work: () => Promise<T>): Promise<{ done: T } | { answer: Answer }> {
  try {
    return { done: await work() };
  } catch (err) {
    if (err instanceof LocalAnswer) return { answer: err.answer };
    throw err;
  }
}

/** Claims the key, linked to `holdId`, and says what a request with an already used key is
 * answered: undefined (with the key's hold id) when the key is new. A request still in progress
 * whose hold has since been settled (its answer never stored: the process died, or it is just
 * storing it) is answered from the hold; otherwise 409 "in progress". */
async function keyAnswer(
  tx: Tx,
  key: IdempotencyKey,
  holdId: Fragment | string | null,
  settled: (h: HoldRow) => Answer | undefined,
): Promise<{ answer: Answer } | { holdId: string | null }> {
  const state = await claimKey(tx, key, holdId);
  const answer = (a: Answer) => ({ answer: a });
  switch (state.kind) {
    case 'new':
      return { holdId: state.holdId };
    case 'answered':
      return answer(state.answer);
    case 'other_request':
      return answer(
        failure(400, 'bad request: this Idempotency-Key was used for another request', [
          'headers.idempotency-key: used for another request',
        ]),
      );
    case 'in_progress': {
      const h = state.holdId ? await getHold(tx, state.holdId) : undefined;
      return answer(
        (h ? settled(h) : undefined) ??
          failure(
            409,
            'a request with this Idempotency-Key is in progress (or its outcome at Tixstock is not known yet)',
            undefined,
            state.holdId ? { hold_id: state.holdId } : {},
          ),
      );
    }
  }
}

/** The answer of a call that made it past its reservation is kept for its key, except when
 * nothing happened anywhere (Tixstock unreachable): then a retry with the key tries again. */
async function remember(deps: SalesDeps, key: IdempotencyKey | undefined, a: Answer, changedNothing: boolean): Promise<Answer> {
  if (!key) return a;
  try {
    if (changedNothing) await forgetKey(deps.sql, key);
    else await storeAnswer(deps.sql, key, a);
  } catch (err) {
    log.warn('could not record the answer of an Idempotency-Key', { scope: key.scope, error: err });
  }
  return a;
}

const holdMs = (c: Config) => c.TIXSTOCK_HOLD_MINUTES * 60_000;
/** How long a call's outcome can stay open: the client may wait up to its timeout for a turn
 * (rate limit, 429 pause) and then up to its timeout for the answer; plus a margin. */
const callWindowMs = (c: Config) => 2 * c.TIXSTOCK_API_TIMEOUT_MS + 5_000;
const errorText = (err: unknown) => (err instanceof TixstockError ? err.message : String((err as Error)?.message ?? err));

/** Tixstock's date format: UTC, +0000. */
export const tixstockDate = (d: Date) => `${d.toISOString().slice(0, 19)}+0000`;

export async function createHold(deps: SalesDeps, listingId: string, quantity: number, key?: IdempotencyKey): Promise<Answer> {
  const { sql, config, tixstock } = deps;
  const requestedAt = Date.now();
  const reserve = async (db: Sql | Tx, holdId?: string) => {
    // Unconfirmed, it is kept until Tixstock's hold would have expired if the call reached
    // Tixstock at the very end of the call's window.
    const r = await reserveHold(db, listingId, quantity, holdMs(config) + callWindowMs(config), holdId);
    if (r.kind === 'not_found')
      throw new LocalAnswer(failure(404, `listing ${listingId} not found`, [`body.listing_id: listing ${listingId} not found`]));
    if (r.kind === 'deleted') throw new LocalAnswer(failure(409, `listing ${listingId} is deleted`));
    if (r.kind === 'not_enough') {
      throw new LocalAnswer(
        failure(409, `listing ${listingId} has ${r.available} ticket(s) left here, not ${quantity}`, undefined, {
          quantity_available: r.available,
        }),
      );
    }
    return r.hold;
  };
  // Without a key the reservation is one statement (its own transaction).
  const reserved = await rollbackWith(() =>
    !key
      ? reserve(sql)
      : (sql.begin(async (tx) => {
          // The key's row takes the new hold's id, so the reservation needs no statement to link them.
          const claimed = await keyAnswer(tx, key, nextHoldId(tx), (h) => {
            if (h.status === 'pending') return undefined;
            if (h.status === 'failed')
              return failure(409, `hold ${h.id} failed: ${h.last_error ?? 'refused by Tixstock'}`, undefined, {
                hold: holdView(h),
              });
            return { status: 201, body: holdView(h) };
          });
          if ('answer' in claimed) throw new LocalAnswer(claimed.answer);
          return reserve(tx, claimed.holdId!);
        }) as Promise<HoldRow>),
  );
  if ('answer' in reserved) return reserved.answer;
  const hold = reserved.done;

  try {
    const reply = await tixstock.hold(listingId, quantity);
    const expiresAt = new Date(requestedAt + holdMs(config));
    let h = await confirmHold(sql, hold.id, reply.holdId, expiresAt);
    if (!h) {
      log.error('Tixstock confirmed a hold that had expired here meanwhile', {
        hold_id: hold.id,
        tixstock_hold_id: reply.holdId,
      });
      h = (await getHold(sql, hold.id))!;
    }
    return remember(deps, key, { status: h.status === 'active' ? 201 : 409, body: holdView(h) }, false);
  } catch (err) {
    if (err instanceof TixstockError && err.kind !== 'unknown_outcome') {
      await undoHold(sql, hold.id, errorText(err));
      const a = refusalAnswer(err, 'hold', 404, { hold_id: hold.id });
      return remember(deps, key, a, a.status === 503);
    }
    // The answer was lost (or confirming failed here): Tixstock may hold the tickets.
    await noteHoldError(sql, hold.id, errorText(err)).catch(() => {});
    log.warn('hold outcome unknown: tickets stay held here until the hold would have expired', {
      hold_id: hold.id,
      error: errorText(err),
    });
    const h = (await getHold(sql, hold.id).catch(() => undefined)) ?? hold;
    return remember(
      deps,
      key,
      failure(
        503,
        `Tixstock's answer to the hold was lost: the tickets stay held until Tixstock's answer is known or until ${h.expires_at.toISOString()}`,
        [errorText(err)],
        { hold: holdView(h) },
        5,
      ),
      false,
    );
  }
}

/** Claims the hold for a call (after `first`, in one transaction, when given). */
async function claim(
  deps: SalesDeps,
  holdId: string,
  op: 'release' | 'order',
  n: number | undefined,
  first?: (tx: Tx) => Promise<void>,
): Promise<{ done: HoldRow } | { answer: Answer }> {
  const take = async (db: Sql | Tx) => {
    const c = await claimHold(db, holdId, op, n, callWindowMs(deps.config));
    if (c.kind === 'not_found') throw new LocalAnswer(failure(404, `hold ${holdId} not found`));
    if (c.kind === 'refused') throw new LocalAnswer(failure(409, c.reason, undefined, { hold: holdView(c.hold) }));
    return c.hold;
  };
  return rollbackWith(() =>
    !first
      ? take(deps.sql)
      : (deps.sql.begin(async (tx) => {
          await first(tx);
          return take(tx);
        }) as Promise<HoldRow>),
  );
}

export async function releaseHold(deps: SalesDeps, holdId: string, quantity: number | undefined): Promise<Answer> {
  const { sql, tixstock } = deps;
  // Read, not claimed: one committed write fewer per release (see releaseRefusal).
  const hold = await getHold(sql, holdId);
  if (!hold) return failure(404, `hold ${holdId} not found`);
  const refusal = releaseRefusal(hold, quantity);
  if (refusal) return failure(409, refusal, undefined, { hold: holdView(hold) });
  const n = quantity ?? hold.quantity;
  try {
    await tixstock.release(hold.tixstock_hold_id!, n);
  } catch (err) {
    await noteHoldError(sql, hold.id, errorText(err)).catch(() => {});
    const view = holdView((await getHold(sql, hold.id).catch(() => undefined)) ?? hold);
    if (err instanceof TixstockError && err.kind !== 'unknown_outcome') return refusalAnswer(err, 'release', 409, { hold: view });
    // Released at Tixstock or not: keeping the tickets off here until the hold expires is the
    // side that cannot oversell; a retry of the release is safe (Tixstock refuses a second one).
    return failure(
      503,
      "Tixstock's answer to the release was lost: the tickets stay held here until the release is retried or the hold expires",
      [errorText(err)],
      { hold: view },
      5,
    );
  }
  return { status: 200, body: holdView(await applyRelease(sql, hold, n)) };
}

export interface OrderInput {
  order_id: string;
  order_status: string;
  currency: string;
  customer: { id: string; first_name?: string; last_name?: string; email_address?: string } & Record<string, unknown>;
  quantity: number;
}

export async function orderHold(deps: SalesDeps, holdId: string, input: OrderInput, key?: IdempotencyKey): Promise<Answer> {
  const { sql, tixstock } = deps;
  const claimed = await claim(deps, holdId, 'order', input.quantity, async (tx) => {
    if (key) {
      const claimed = await keyAnswer(tx, key, isHoldId(holdId) ? holdId : null, (h) =>
        h.status === 'ordered' && h.order_id === input.order_id
          ? {
              status: 201,
              body: {
                ...holdView(h),
                order: { id: input.order_id, order_status: input.order_status, quantity: h.sold_quantity },
              },
            }
          : undefined,
      );
      if ('answer' in claimed) throw new LocalAnswer(claimed.answer);
    }
    const soldFrom = await holdOfOrder(tx, input.order_id);
    if (soldFrom !== undefined && soldFrom !== null) {
      throw new LocalAnswer(failure(409, `order ${input.order_id} was already sold through us (hold ${soldFrom})`));
    }
  });
  if ('answer' in claimed) return claimed.answer;
  const hold = claimed.done;
  const date = tixstockDate(new Date());
  try {
    await tixstock.addOrder(hold.tixstock_hold_id!, input.quantity, {
      order_id: input.order_id,
      order_status: input.order_status,
      datetime: date,
      currency: input.currency,
      customer: input.customer,
    });
  } catch (err) {
    if (err instanceof TixstockError && err.kind !== 'unknown_outcome') {
      await clearBusy(sql, hold.id, errorText(err)).catch(() => {});
      const view = holdView((await getHold(sql, hold.id).catch(() => undefined)) ?? hold);
      const a = refusalAnswer(err, 'order', 409, { hold: view });
      return remember(deps, key, a, a.status === 503);
    }
    // Sold at Tixstock or not: the hold stays busy with the order (see expireDueHolds), its
    // tickets off here; order/add is never sent again blindly.
    await noteHoldError(sql, hold.id, errorText(err), input.order_id).catch(() => {});
    log.warn('order/add outcome unknown', { hold_id: hold.id, order_id: input.order_id, error: errorText(err) });
    return remember(
      deps,
      key,
      failure(
        503,
        `Tixstock's answer to order ${input.order_id} was lost: the order may or may not exist at Tixstock; the tickets stay off here`,
        [errorText(err)],
        { hold: holdView(hold) },
        5,
      ),
      false,
    );
  }
  const sold = await sql.begin(async (tx) => {
    const h = await applyOwnSale(tx, hold.id, input.quantity, input.order_id);
    const recorded = await recordOwnSale(tx, {
      id: input.order_id,
      holdId: hold.id,
      status: input.order_status,
      currency: input.currency,
      quantity: input.quantity,
      date,
      customer: input.customer,
    });
    if (!recorded)
      log.error('order id taken by another hold while Tixstock took our order', { hold_id: hold.id, order_id: input.order_id });
    return h;
  });
  const order = { id: input.order_id, order_status: input.order_status, quantity: input.quantity };
  return remember(deps, key, { status: 201, body: { ...holdView(sold), order } }, false);
}
