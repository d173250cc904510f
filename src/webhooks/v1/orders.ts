// order.update (Tixstock webhooks v1).
import { upsertOrder } from '../../inventory/orders.js';
import { applied, defineWebhook, entityKey } from '../registry.js';
import { orderResource } from '../../tixstock/resources.js';

export const orderUpdate = defineWebhook({
  schema: orderResource,
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('order', data.id),
  async handle(ctx, data) {
    const { orderStatus } = await upsertOrder(ctx.tx, data);
    return applied({ order_status: orderStatus, success: true }, { order_id: data.id });
  },
});
