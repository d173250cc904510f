// ticket.hold and ticket.release (Tixstock webhooks v1): each is a change to one listing's
// quantity (registry.ts `delta`), applied by inventory/quantity-deltas.ts in one statement that
// also records the delivery with its reply (process.ts sends it, with others arriving at once).
import { z } from 'zod';
import { count, looseId } from '../../tixstock/resources.js';
import { defineWebhook } from '../registry.js';

export const ticketHold = defineWebhook({
  schema: z.looseObject({ external_id: looseId, hold_quantity: count(1) }),
  retriesAreDuplicates: false,
  delta: (data) => ({ kind: 'ticket.hold', listingId: data.external_id, n: data.hold_quantity }),
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
  delta: (data) => ({ kind: 'ticket.release', listingId: data.external_id, n: (data.release_quantity ?? data.hold_quantity)! }),
});
