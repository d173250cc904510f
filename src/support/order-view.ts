// An order as the API, the support page and the CLI show it: the order, its tickets (without
// their bytes) in seat order, and its proof URLs. Also the merged PDF of all its tickets.
import type { Sql } from '../db/connect.js';
import { syncStateOfOrder, TIXSTOCK_ORDER_UPDATE } from '../jobs/queue.js';
import { getOrder } from '../inventory/orders.js';
import { mergePdfs } from '../tickets/merge.js';
import { proofUrlsOfOrder, ticketPdfsOfOrder, ticketsOfOrder } from '../tickets/store.js';

/** Order ids are Tixstock's strings (e.g. "R-20027"): any printable text up to 100 characters.
 * They only ever reach SQL as parameters, so path tricks name no order rather than a file. */
export function isOrderId(id: string): boolean {
  return id.length >= 1 && id.length <= 100 && !/[\u0000-\u001f\u007f]/.test(id);
}

export async function orderView(sql: Sql, id: string) {
  if (!isOrderId(id)) return undefined;
  const order = await getOrder(sql, id);
  if (!order) return undefined;
  const tickets = await ticketsOfOrder(sql, id);
  return {
    ...order,
    tickets: tickets.map((t) => ({
      id: t.id, listing_id: t.listing_id, row: t.row, seat: t.seat, bytes: t.bytes, sha256: t.sha256, pages: t.pages,
      received_at: t.received_at, kind: t.kind, general_admission: t.general_admission,
    })),
    proof_file_urls: await proofUrlsOfOrder(sql, id),
    // Orders sold through us: whether our status has reached Tixstock's order/update.
    tixstock_sync: order.hold_id === null ? null : await syncStateOfOrder(sql, id, TIXSTOCK_ORDER_UPDATE),
  };
}
export type OrderView = NonNullable<Awaited<ReturnType<typeof orderView>>>;

export type MergedTickets =
  | { found: false }
  | { found: true; tickets: number; pdf: Uint8Array | null };

/** Every ticket PDF of the order in one PDF, in seat order; pdf is null when it has none. */
export async function mergedTickets(sql: Sql, orderId: string): Promise<MergedTickets> {
  if (!isOrderId(orderId) || !(await getOrder(sql, orderId))) return { found: false };
  const tickets = await ticketPdfsOfOrder(sql, orderId);
  if (tickets.length === 0) return { found: true, tickets: 0, pdf: null };
  return { found: true, tickets: tickets.length, pdf: await mergePdfs(tickets.map((t) => t.pdf)) };
}
