// ticket.add / update / delete / hold / release / sold (Tixstock webhooks v1).
import { z } from 'zod';
import type { Fragment } from '../../db/connect.js';
import { isBrokerClosed } from '../../inventory/brokers.js';
import { upsertEvent } from '../../inventory/events.js';
import { listingFields } from '../../inventory/listing-fields.js';
import * as listings from '../../inventory/listings.js';
import type { ListingFields, QuantityChange } from '../../inventory/listings.js';
import { upsertOrder } from '../../inventory/orders.js';
import { deliveryInsertSelect, nextDeliveryId, type RecordedDelivery } from '../deliveries.js';
import {
  applied,
  defineWebhook,
  entityKey,
  rejected,
  type HandlerContext,
  type HandlerResult,
  type StatementContext,
} from '../registry.js';
import { count, listingResource, looseId, orderResource, seat, type ListingResource } from '../../tixstock/resources.js';

function fieldsOf(ctx: HandlerContext, l: ListingResource): ListingFields {
  return listingFields(l, ctx.config.DISPLAY_PRICE_MARKUP_PERCENT);
}

/** The reply for a change to an existing listing, shared by update/delete/hold/release/sold. */
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

// Holds and releases are most of Tixstock's traffic: each is one statement that changes the
// listing and records the delivery with its reply (see registry.ts `statement`). The replies
// have replyFor's shapes; the applied one is built in SQL, where before and after are known.
function quantityStatement(
  ctx: StatementContext,
  p: {
    listingId: string;
    reason: string;
    n: number;
    quantity: Fragment;
    done: string;
    verb: 'held' | 'released';
  },
) {
  const { db } = ctx;
  const notFound = rejected({ listing_id: p.listingId }, `listing ${p.listingId} not found`).reply;
  const deleted = rejected({ listing_id: p.listingId }, `listing ${p.listingId} is deleted`).reply;
  return listings.changeQuantityRecorded<RecordedDelivery>(db, {
    id: p.listingId,
    reason: p.reason,
    requested: p.n,
    quantity: p.quantity,
    deliveryId: nextDeliveryId(db),
    record: deliveryInsertSelect(db, ctx.delivery, {
      id: db`result.delivery_id`,
      outcome: db`case when result.after is null then 'rejected' else 'applied' end`,
      // A hold or release that could not be applied in full says so: "held 4 of 5 requested".
      reply: db`case when result.status is null then ${db.json(notFound as never)}::json
                     when result.after is null then ${db.json(deleted as never)}::json
                     when abs(result.after - result.before) < ${p.n}::int
                     then json_build_object('listing_id', ${p.listingId}::text, 'success', true,
                            'message', ${p.verb}::text || ' ' || abs(result.after - result.before) || ' of ' || ${p.n}::int
                              || ' requested on listing ' || ${p.listingId}::text || '; quantity ' || result.before || ' -> ' || result.after)
                     else json_build_object('listing_id', ${p.listingId}::text, 'success', true,
                            'message', ${p.done}::text || '; quantity ' || result.before || ' -> ' || result.after) end`,
      listingId: db`${listings.isListingId(p.listingId) ? p.listingId : null}::bigint`,
      from: db`result`,
    }),
  });
}

export const ticketHold = defineWebhook({
  schema: z.looseObject({ external_id: looseId, hold_quantity: count(1) }),
  retriesAreDuplicates: false,
  statement: (ctx, data) =>
    quantityStatement(ctx, {
      listingId: data.external_id,
      reason: 'ticket.hold',
      n: data.hold_quantity,
      quantity: listings.holdQuantity(ctx.db, data.hold_quantity),
      done: `${data.hold_quantity} held on listing ${data.external_id}`,
      verb: 'held',
    }),
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
  statement: (ctx, data) => {
    const n = (data.release_quantity ?? data.hold_quantity)!;
    return quantityStatement(ctx, {
      listingId: data.external_id,
      reason: 'ticket.release',
      n,
      quantity: listings.releaseQuantity(ctx.db, n),
      done: `${n} released on listing ${data.external_id}`,
      verb: 'released',
    });
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
