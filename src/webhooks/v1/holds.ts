// ticket.hold and ticket.release (Tixstock webhooks v1): each is one statement, written out in
// inventory/quantity-deltas.ts, that also records the delivery with its reply (registry.ts
// `statement`; process.ts sends it).
import { z } from 'zod';
import { applyQuantityDelta, type QuantityDelta } from '../../inventory/quantity-deltas.js';
import { count, looseId } from '../../tixstock/resources.js';
import { defineWebhook, type StatementContext } from '../registry.js';

const deltaStatement = (ctx: StatementContext, kind: QuantityDelta['kind'], listingId: string, n: number) =>
  applyQuantityDelta(ctx.db, { kind, listingId, n }, { ...ctx.delivery, id: ctx.deliveryId });

export const ticketHold = defineWebhook({
  schema: z.looseObject({ external_id: looseId, hold_quantity: count(1) }),
  retriesAreDuplicates: false,
  statement: (ctx, data) => deltaStatement(ctx, 'ticket.hold', data.external_id, data.hold_quantity),
});

// The docs' field table names the quantity hold_quantity, their example release_quantity.
const releaseSchema = z
  .looseObject({ external_id: looseId, release_quantity: count(1).optional(), hold_quantity: count(1).optional() })
  .refine((d) => d.release_quantity !== undefined || d.hold_quantity !== undefined, {
    message: 'release_quantity (or hold_quantity) is required',
    path: ['release_quantity'],
  });

export const ticketRelease = defineWebhook({
  schema: releaseSchema,
  retriesAreDuplicates: false,
  statement: (ctx, data) =>
    deltaStatement(ctx, 'ticket.release', data.external_id, (data.release_quantity ?? data.hold_quantity)!),
});
