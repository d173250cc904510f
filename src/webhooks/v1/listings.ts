// ticket.add / update / delete / hold / release / sold (Tixstock webhooks v1).
import { z } from 'zod';
import type { Tx } from '../../db/connect.js';
import { isBrokerClosed } from '../../inventory/brokers.js';
import { upsertEvent } from '../../inventory/events.js';
import * as listings from '../../inventory/listings.js';
import type { ListingFields, QuantityChange } from '../../inventory/listings.js';
import { upsertOrder } from '../../inventory/orders.js';
import { applyMarkup } from '../../money.js';
import { applied, defineWebhook, rejected, type HandlerContext, type HandlerResult } from '../registry.js';
import { orderResource } from './orders.js';
import { count, listingResource, looseId, seat, type ListingResource } from './schemas.js';

function fieldsOf(ctx: HandlerContext, l: ListingResource): ListingFields {
  const { currency, amount } = l.display_price;
  return {
    brokerId: l.broker_id,
    eventId: l.event.id,
    quantity: l.number_of_tickets_for_sale.quantity_available,
    firstSeat: l.seat_details?.first_seat ?? null,
    displayPrice: { currency, amount: applyMarkup(amount, ctx.config.DISPLAY_PRICE_MARKUP_PERCENT) },
    tixstockDisplayPrice: { currency, amount },
    proceedPrice: l.proceed_price ?? null,
    faceValue: l.face_value ?? null,
    seatDetails: l.seat_details ?? null,
    ticket: l.ticket ?? null,
    data: l,
  };
}

/** The reply for a change to an existing listing, shared by update/delete/hold/release/sold. */
function replyFor(listingId: string, change: QuantityChange, done: string): HandlerResult {
  const refs = { listing_id: listings.isListingId(listingId) ? listingId : null };
  if (!change.found) return rejected({ listing_id: listingId }, `listing ${listingId} not found`, refs);
  if (change.status === 'deleted') return rejected({ listing_id: listingId }, `listing ${listingId} is deleted`, refs);
  return applied({ listing_id: listingId, success: true, message: `${done}; quantity ${change.before} -> ${change.after}` }, refs);
}

defineWebhook('v1', ['ticket.add', 'ticket.create'], {
  schema: listingResource,
  retriesAreDuplicates: true,
  async handle(ctx, data) {
    const refs = { event_id: data.event.id, broker_id: data.broker_id };
    if (await isBrokerClosed(ctx.tx, data.broker_id)) {
      return rejected({ listing_id: null }, `broker ${data.broker_id} is closed: no new listings are published`, refs);
    }
    const event = await upsertEvent(ctx.tx, data.event);
    if (event.cancelled) return rejected({ listing_id: null }, `event ${data.event.id} is cancelled`, refs);
    const fields = fieldsOf(ctx, data);
    const id = await listings.createListing(ctx.tx, ctx.deliveryId, fields);
    return applied(
      { listing_id: id, display_price: fields.displayPrice, success: true, message: `listing ${id} created with quantity ${fields.quantity}` },
      { ...refs, listing_id: id },
    );
  },
});

defineWebhook('v1', ['ticket.update'], {
  schema: listingResource.extend({ id: looseId }),
  retriesAreDuplicates: true,
  async handle(ctx, data) {
    if (await isBrokerClosed(ctx.tx, data.broker_id)) {
      return rejected({ listing_id: data.id }, `broker ${data.broker_id} is closed: its listings are no longer updated`,
        { listing_id: listings.isListingId(data.id) ? data.id : null, broker_id: data.broker_id });
    }
    const event = await upsertEvent(ctx.tx, data.event);
    const change = await listings.applyUpdate(ctx.tx, ctx.deliveryId, data.id, fieldsOf(ctx, data));
    const result = replyFor(data.id, change, `listing ${data.id} updated`);
    return event.cancelled && result.outcome === 'applied'
      ? { ...result, reply: { ...result.reply, message: `${String(result.reply.message)} (event ${data.event.id} is cancelled)` } }
      : result;
  },
});

defineWebhook('v1', ['ticket.delete'], {
  schema: z.looseObject({ listing_id: looseId }),
  retriesAreDuplicates: true,
  async handle(ctx, data) {
    const change = await listings.applyDelete(ctx.tx, ctx.deliveryId, data.listing_id);
    if (change.found && change.status === 'deleted') {
      return applied({ listing_id: data.listing_id, success: true, message: `listing ${data.listing_id} was already deleted` },
        { listing_id: data.listing_id });
    }
    return replyFor(data.listing_id, change, `listing ${data.listing_id} deleted`);
  },
});

// Holds and releases are most of Tixstock's traffic: they take the fast path (handleRecorded),
// recording the delivery in the same statement as the change.
const holdSchema = z.looseObject({ external_id: looseId, hold_quantity: count(1) });

async function hold(tx: Tx, delivery: listings.DeliveryRef, data: z.output<typeof holdSchema>) {
  const change = await listings.applyHold(tx, delivery, data.external_id, data.hold_quantity);
  return { ...replyFor(data.external_id, change, `${data.hold_quantity} held on listing ${data.external_id}`), deliveryId: change.deliveryId };
}

defineWebhook('v1', ['ticket.hold'], {
  schema: holdSchema,
  retriesAreDuplicates: false,
  handle: (ctx, data) => hold(ctx.tx, ctx.deliveryId, data),
  handleRecorded: (ctx, data) => hold(ctx.tx, ctx.delivery, data),
});

// The docs' field table names the quantity hold_quantity, their example release_quantity.
const releaseSchema = z
  .looseObject({ external_id: looseId, release_quantity: count(1).optional(), hold_quantity: count(1).optional() })
  .refine((d) => d.release_quantity !== undefined || d.hold_quantity !== undefined, {
    message: 'release_quantity (or hold_quantity) is required',
    path: ['release_quantity'],
  });

async function release(tx: Tx, delivery: listings.DeliveryRef, data: z.output<typeof releaseSchema>) {
  const n = (data.release_quantity ?? data.hold_quantity)!;
  const change = await listings.applyRelease(tx, delivery, data.external_id, n);
  return { ...replyFor(data.external_id, change, `${n} released on listing ${data.external_id}`), deliveryId: change.deliveryId };
}

defineWebhook('v1', ['ticket.release'], {
  schema: releaseSchema,
  retriesAreDuplicates: false,
  handle: (ctx, data) => release(ctx.tx, ctx.deliveryId, data),
  handleRecorded: (ctx, data) => release(ctx.tx, ctx.delivery, data),
});

defineWebhook('v1', ['ticket.sold'], {
  schema: z.looseObject({
    listing_id: looseId,
    sold_quantity: count(0),
    quantity: count(0),
    first_seat: seat.optional(),
    order_details: orderResource.nullish(),
  }),
  retriesAreDuplicates: true,
  async handle(ctx, data) {
    const change = await listings.applySold(ctx.tx, ctx.deliveryId, data.listing_id, data.quantity, data.first_seat ?? null);
    const result = replyFor(data.listing_id, change, `${data.sold_quantity} sold on listing ${data.listing_id}`);
    const orderId = data.order_details?.id ?? null;
    if (data.order_details) await upsertOrder(ctx.tx, data.order_details);
    if (result.outcome === 'applied') {
      await listings.recordSale(ctx.tx, {
        listingId: data.listing_id, deliveryId: ctx.deliveryId, soldQuantity: data.sold_quantity,
        quantityAfter: data.quantity, firstSeat: data.first_seat ?? null, orderId,
      });
    }
    return { ...result, refs: { ...result.refs, order_id: orderId } };
  },
});
