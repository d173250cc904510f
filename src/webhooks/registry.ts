// (version, meta.type) -> zod schema + handler. Adding v2 later means adding a v2/ folder with its
// table, given to webhookRegistry beside v1's (process.ts), not editing v1.
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Tx } from '../db/connect.js';
import type { QuantityDelta } from '../inventory/quantity-deltas.js';
import type { DeliveryRefs } from './deliveries.js';
import type { ExternalFile } from './stored-body.js';

export interface HandlerContext {
  tx: Tx;
  deliveryId: string;
  config: Config;
}

export interface HandlerResult {
  /** 'rejected' is a business failure: answered 200 with success false in the body. */
  outcome: 'applied' | 'rejected';
  reply: Record<string, unknown>;
  refs?: DeliveryRefs;
  /** The entity it set when that is known only once applied (ticket.add: the listing it created). */
  entity?: string;
}

/** The key of an entity whose absolute state webhooks set, e.g. `listing:300001`: a delivery is a
 * retry only when it equals the entity's latest applied delivery (deliveries.ts). */
export function entityKey(kind: 'listing' | 'event' | 'broker' | 'order', id: string): string {
  return `${kind}:${id}`;
}

export interface WebhookDefinition<S extends z.ZodType = z.ZodType, P = z.output<S>> {
  schema: S;
  /** Slow checks of the parsed data (loading a ticket PDF), outside the transaction and only when
   * the webhook is not a retry of an applied one: a retry is answered from the log without them.
   * What it returns is what `handle` (and `externalFile`) get. */
  prepare?(ctx: { config: Config; deadlineAt: number }, data: z.output<S>): Promise<P>;
  /** Sets absolute state: a body equal to the latest applied delivery for the same entity within
   * 24 h is a retry, answered from the log (see entityOf). False for deltas (hold, release)
   * where two identical webhooks may both be real. */
  retriesAreDuplicates: boolean;
  /** The entity (entityKey) the webhook sets, known from its data. Without it, the entity is the
   * one the handler reports (HandlerResult.entity), and a body is a retry when it equals an
   * applied delivery that is still the latest of its entity (or has none). */
  entityOf?(data: z.output<S>): string;
  /** The schema takes JsonStringBytes (json-bytes.ts) for string values of LIFT_MIN bytes or
   * more, instead of strings: for ticket PDFs of tens of MB. Default false. */
  largeStrings?: boolean;
  /** The large string (a JsonStringBytes of `input`, the data before the schema) whose decoded
   * bytes handle() stores whenever it applies the webhook: a fulfilment's PDF, in tickets. The
   * delivery then keeps its body with that string replaced by a reference (stored-body.ts). */
  externalFile?(input: unknown, data: P): ExternalFile | undefined;
  /** Applies the webhook in the transaction that has recorded its delivery (ctx.deliveryId). */
  handle?(ctx: HandlerContext, data: P): Promise<HandlerResult>;
  /** Or, for the hot types that are deltas (hold, release): the change to a listing's quantity.
   * process.ts applies it together with those of other webhooks arriving at the same time, in
   * one autocommit statement that also records each one's delivery with its outcome and reply
   * (inventory/quantity-deltas.ts, db/group-commit.ts). Exactly one of the two. */
  delta?(data: z.output<S>): QuantityDelta;
}

/** A webhook's definition, its handler's input checked against its schema by the compiler. A
 * version's table (v1/index.ts) says which types it handles. */
export function defineWebhook<S extends z.ZodType, P = z.output<S>>(def: WebhookDefinition<S, P>): AnyWebhook {
  return def as unknown as AnyWebhook;
}

export type AnyWebhook = WebhookDefinition<z.ZodType, unknown>;
/** meta.type -> definition, for one version. */
export type WebhookTable = Record<string, AnyWebhook>;

export interface WebhookRegistry {
  find(version: string, type: string): AnyWebhook | undefined;
  /** The versions there is a table for, sorted. */
  versions: string[];
}

/** Version -> its table; every definition is checked once, here. */
export function webhookRegistry(tables: Record<string, WebhookTable>): WebhookRegistry {
  const byVersion = new Map<string, Map<string, AnyWebhook>>();
  for (const [version, table] of Object.entries(tables)) {
    const types = new Map<string, AnyWebhook>();
    for (const [type, def] of Object.entries(table)) {
      if (!def.handle === !def.delta) throw new Error(`webhook ${version} ${type}: define handle or delta, not both`);
      if (def.delta && def.prepare) throw new Error(`webhook ${version} ${type}: a delta webhook has no prepare step`);
      if (def.delta && def.retriesAreDuplicates)
        throw new Error(`webhook ${version} ${type}: a delta webhook cannot be checked for retries`);
      if (def.entityOf && !def.retriesAreDuplicates)
        throw new Error(`webhook ${version} ${type}: entityOf is for webhooks whose retries are duplicates`);
      types.set(type, def);
    }
    byVersion.set(version, types);
  }
  return { find: (version, type) => byVersion.get(version)?.get(type), versions: [...byVersion.keys()].sort() };
}

/** `Tixstock-Version` as sent ("v1", "V1", " v1 "); a missing header means v1. */
export function normalizeVersion(header: string | undefined): string {
  const v = (header ?? '').trim().toLowerCase();
  return v === '' ? 'v1' : v;
}

/** Shared reply builders, so every handler answers in the same shapes. */
export function applied(reply: Record<string, unknown>, refs?: DeliveryRefs): HandlerResult {
  return { outcome: 'applied', reply, refs };
}

export function rejected(
  reply: Record<string, unknown>,
  message: string,
  refs?: DeliveryRefs,
  successValue: boolean | string = false,
): HandlerResult {
  return { outcome: 'rejected', reply: { ...reply, success: successValue, message, errors: [message] }, refs };
}
