// Absolute writes to Tixstock (our order status, a broker's closure) as jobs written in the same
// transaction as the local change, and retried with back-off by the job worker until Tixstock
// accepts them: a Tixstock outage loses none, and no request waits for Tixstock.
import type { Sql } from '../db/connect.js';
import { getBrokerClosedAt, setBrokerClosed } from '../inventory/brokers.js';
import { getOrder, setResellerStatus } from '../inventory/orders.js';
import { enqueueJob, syncStateOfOrder, TIXSTOCK_BROKER_CLOSE, TIXSTOCK_ORDER_UPDATE, type Job } from '../jobs/queue.js';
import type { JobHandler } from '../jobs/worker.js';
import type { TixstockClient } from '../tixstock/contract.js';

/** Tried for about two days (back-off doubling up to the worker's maximum, an hour by default). */
const SYNC_ATTEMPTS = 60;

/** PUT /api/orders/:id/status: our status, and for an order sold through us its push to
 * Tixstock's order/update, in one transaction. */
export async function setOrderStatus(
  sql: Sql,
  orderId: string,
  status: string | null,
): Promise<{ created: boolean; pushed: boolean }> {
  return sql.begin(async (tx) => {
    const { created, soldThroughUs } = await setResellerStatus(tx, orderId, status);
    const pushed = soldThroughUs && status !== null;
    if (pushed)
      await enqueueJob(tx, { kind: TIXSTOCK_ORDER_UPDATE, payload: { order_id: orderId }, orderId, maxAttempts: SYNC_ATTEMPTS });
    return { created, pushed };
  });
}

/** POST /api/brokers/:id/close: closed here at once, at Tixstock by a job. Undefined when the
 * broker is unknown. */
export async function closeBroker(sql: Sql, brokerId: string) {
  return sql.begin(async (tx) => {
    if ((await getBrokerClosedAt(tx, brokerId)) === undefined) return undefined;
    await setBrokerClosed(tx, brokerId, true);
    const jobId = await enqueueJob(tx, {
      kind: TIXSTOCK_BROKER_CLOSE,
      payload: { broker_id: brokerId },
      maxAttempts: SYNC_ATTEMPTS,
    });
    return {
      broker_id: brokerId,
      closed_at: (await getBrokerClosedAt(tx, brokerId))!,
      tixstock_sync: { status: 'pending' as const, job_id: jobId },
    };
  });
}

/** Each job sends the order's status as it is when the job runs, so jobs that run late or out
 * of order still leave Tixstock with the latest one. */
function orderUpdateJob(tixstock: TixstockClient): JobHandler {
  return async (job: Job, { sql }) => {
    const orderId = String(job.payload.order_id);
    const order = await getOrder(sql, orderId);
    const status = order?.reseller_status;
    if (!order || !status) return; // nothing of ours to send any more
    await tixstock.updateOrder(orderId, { order_status: status });
  };
}

function brokerCloseJob(tixstock: TixstockClient): JobHandler {
  return async (job: Job) => {
    await tixstock.closeBroker(String(job.payload.broker_id));
  };
}

export function syncJobHandlers(tixstock: TixstockClient): Record<string, JobHandler> {
  return { [TIXSTOCK_ORDER_UPDATE]: orderUpdateJob(tixstock), [TIXSTOCK_BROKER_CLOSE]: brokerCloseJob(tixstock) };
}

export const orderSyncState = (sql: Sql, orderId: string) => syncStateOfOrder(sql, orderId, TIXSTOCK_ORDER_UPDATE);
