// ticket.add / update / delete / sold (Tixstock webhooks v1); hold and release are in holds.ts.
import { z } from 'zod';
import { isBrokerClosed } from '../../inventory/brokers.js';
import { upsertEvent } from '../../inventory/events.js';
import { listingFields } from '../../inventory/listing-fields.js';
import * as listings from '../../inventory/listings.js';
import type { ListingFields, QuantityChange } from '../../inventory/listings.js';
import { upsertOrder } from '../../inventory/orders.js';
import { applied, defineWebhook, entityKey, rejected, type HandlerContext, type HandlerResult } from '../registry.js';
import { count, listingResource, looseId, orderResource, seat, type ListingResource } from '../../tixstock/resources.js';

function fieldsOf(ctx: HandlerContext, l: ListingResource): ListingFields {
  return listingFields(l, ctx.config.DISPLAY_PRICE_MARKUP_PERCENT);
}

/** The reply for a change to an existing listing, shared by update/delete/sold (holds.ts has the
 * same shapes for holds and releases, built in their statement). */
function replyFor(listingId: string, change: QuantityChange, done: string): HandlerResult {
  const refs = { listing_id: listings.isListingId(listingId) ? listingId : null };
  if (!change.found) return rejected({ listing_id: listingId }, `listing ${listingId} not found`, refs);
  if (change.status === 'deleted') return rejected({ listing_id: listingId }, `listing ${listingId} is deleted`, refs);
  return applied(
    { listing_id: listingId, success: true, message: `${done}; quantity ${change.before} -> ${change.after}` },
    refs,
  );
}

export const ticketAdd = defineWebhook({
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
    return {
      ...applied(
        {
          listing_id: id,
          display_price: fields.displayPrice,
          success: true,
          message: `listing ${id} created with quantity ${fields.quantity}`,
        },
        { ...refs, listing_id: id },
      ),
      entity: entityKey('listing', id),
    };
  },
});

export const ticketUpdate = defineWebhook({
  schema: listingResource.extend({ id: looseId }),
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('listing', data.id),
  async handle(ctx, data) {
    const refs = { listing_id: listings.isListingId(data.id) ? data.id : null, broker_id: data.broker_id };
    // A listing stays its broker's: naming another broker would also get round a closed broker.
    const owner = await listings.brokerOfListing(ctx.tx, data.id);
    if (owner !== undefined && owner !== data.broker_id) {
      return rejected(
        { listing_id: data.id },
        `listing ${data.id} belongs to broker ${owner}; a ticket.update cannot move it to broker ${data.broker_id}`,
        refs,
      );
    }
    if (await isBrokerClosed(ctx.tx, data.broker_id)) {
      return rejected({ listing_id: data.id }, `broker ${data.broker_id} is closed: its listings are no longer updated`, refs);
    }
    // The event's row stays locked to the commit, so an event.cancel running now either comes
    // first (and this is refused) or after (and deletes this listing with the event's others).
    const event = await upsertEvent(ctx.tx, data.event);
    if (event.cancelled) {
      return rejected(
        { listing_id: data.id },
        `event ${data.event.id} is cancelled: listing ${data.id} is not updated or moved into it`,
        refs,
      );
    }
    const change = await listings.applyUpdate(ctx.tx, ctx.deliveryId, data.id, fieldsOf(ctx, data));
    return replyFor(data.id, change, `listing ${data.id} updated`);
  },
});

export const ticketDelete = defineWebhook({
  schema: z.looseObject({ listing_id: looseId }),
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('listing', data.listing_id),
  async handle(ctx, data) {
    const change = await listings.applyDelete(ctx.tx, ctx.deliveryId, data.listing_id);
    if (change.found && change.status === 'deleted') {
      return applied(
        { listing_id: data.listing_id, success: true, message: `listing ${data.listing_id} was already deleted` },
        { listing_id: data.listing_id },
      );
    }
    return replyFor(data.listing_id, change, `listing ${data.listing_id} deleted`);
  },
});

export const ticketSold = defineWebhook({
  schema: z.looseObject({
    listing_id: looseId,
    sold_quantity: count(0),
    quantity: count(0),
    first_seat: seat.optional(),
    order_details: orderResource.nullish(),
  }),
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('listing', data.listing_id),
  async handle(ctx, data) {
    const change = await listings.applySold(ctx.tx, ctx.deliveryId, data.listing_id, data.quantity, data.first_seat ?? null);
    const result = replyFor(data.listing_id, change, `${data.sold_quantity} sold on listing ${data.listing_id}`);
    const orderId = data.order_details?.id ?? null;
    if (data.order_details) await upsertOrder(ctx.tx, data.order_details);
    if (result.outcome === 'applied') {
      await listings.recordSale(ctx.tx, {
        listingId: data.listing_id,
        deliveryId: ctx.deliveryId,
        soldQuantity: data.sold_quantity,
        quantityAfter: data.quantity,
        firstSeat: data.first_seat ?? null,
        orderId,
      });
    }
    return { ...result, refs: { ...result.refs, order_id: orderId } };
  },
});
