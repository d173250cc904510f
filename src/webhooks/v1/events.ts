// event.update / event.cancel (Tixstock webhooks v1).
import { cancelEvent, upsertEvent } from '../../inventory/events.js';
import { deleteListingsOfEvent } from '../../inventory/listings.js';
import { applied, defineWebhook, entityKey } from '../registry.js';
import { eventResource, type EventResource } from '../../tixstock/resources.js';

/** Both set the event's absolute state: a retry is an equal body for the same event. */
const eventState = {
  schema: eventResource,
  retriesAreDuplicates: true,
  entityOf: (data: EventResource) => entityKey('event', data.id),
};

export const eventUpdate = defineWebhook({
  ...eventState,
  async handle(ctx, data) {
    const { cancelled } = await upsertEvent(ctx.tx, data);
    return applied(
      { event_id: data.id, success: true, message: `event ${data.id} updated${cancelled ? ' (it stays cancelled)' : ''}` },
      { event_id: data.id },
    );
  },
});

export const eventCancel = defineWebhook({
  ...eventState,
  async handle(ctx, data) {
    // Recorded even when unknown, so that a later ticket.add for it is refused.
    const { found } = await cancelEvent(ctx.tx, data);
    if (!found) return applied({ event_found: false }, { event_id: data.id });
    const ids = await deleteListingsOfEvent(ctx.tx, ctx.deliveryId, data.id);
    return applied({ event_found: true, listings: Object.fromEntries(ids.map((id) => [id, true])) }, { event_id: data.id });
  },
});
