// order.update (Tixstock webhooks v1), and the order resource that ticket.sold may carry.
import { z } from 'zod';
import { upsertOrder } from '../../inventory/orders.js';
import { applied, defineWebhook, entityKey } from '../registry.js';
import { amount, count, looseId } from './schemas.js';

const text = z.union([z.string(), z.number()]).transform((v) => String(v)).nullish();

/** Tixstock's order resource. Only `id` is required: ticket.sold may carry a partial copy. */
export const orderResource = z.looseObject({
  id: looseId,
  date: z.string().nullish(),
  customer: z
    .looseObject({
      id: text,
      first_name: z.string().nullish(),
      last_name: z.string().nullish(),
      email_address: z.string().nullish(),
    })
    .nullish(),
  items: z.array(z.looseObject({ listing_id: text })).nullish(),
  quantity: count(0).nullish(),
  currency: z.string().trim().max(10).nullish(),
  sub_total: amount.nullish(),
  grand_total: amount.nullish(),
  status: z.string().trim().max(100).nullish(),
  shipping_tracking_id: text,
  shipping_label: z.string().nullish(),
});
export type OrderResource = z.infer<typeof orderResource>;

defineWebhook('v1', ['order.update'], {
  schema: orderResource,
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('order', data.id),
  async handle(ctx, data) {
    const { orderStatus } = await upsertOrder(ctx.tx, data);
    return applied({ order_status: orderStatus, success: true }, { order_id: data.id });
  },
});
