// An order as the API, the support page and the CLI show it: the order, its tickets (without
// their bytes) in seat order, and its proof URLs. Also the merged PDF of all its tickets.
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { isId } from '../ids.js';
import { syncStateOfOrder, TIXSTOCK_ORDER_UPDATE } from '../jobs/queue.js';
import { getOrder } from '../inventory/orders.js';
import { pdfWorkers } from '../tickets/pdf-workers.js';
import { proofUrlsOfOrder, ticketPdfsOfOrder, ticketsOfOrder } from '../tickets/store.js';

/** Order ids are Tixstock's strings (e.g. "R-20027") under the one id rule of ids.ts. They only
 * ever reach SQL as parameters, so path tricks name no order rather than a file. */
export const isOrderId = isId;

export async function orderView(sql: Sql, id: string) {
  if (!isOrderId(id)) return undefined;
  const order = await getOrder(sql, id);
  if (!order) return undefined;
  const tickets = await ticketsOfOrder(sql, id);
  return {
    ...order,
    tickets: tickets.map((t) => ({
      id: t.id,
      listing_id: t.listing_id,
      row: t.row,
      seat: t.seat,
      bytes: t.bytes,
      sha256: t.sha256,
      pages: t.pages,
      received_at: t.received_at,
      kind: t.kind,
      general_admission: t.general_admission,
    })),
    proof_file_urls: await proofUrlsOfOrder(sql, id),
    // Orders sold through us: whether our status has reached Tixstock's order/update.
    tixstock_sync: order.hold_id === null ? null : await syncStateOfOrder(sql, id, TIXSTOCK_ORDER_UPDATE),
  };
}
export type OrderView = NonNullable<Awaited<ReturnType<typeof orderView>>>;

export type MergedTickets =
  | { found: false }
  | { found: true; tickets: number; pdf: Uint8Array | null; error?: undefined }
  | { found: true; tickets: number; pdf: null; error: string };

/** Every ticket PDF of the order in one PDF, in seat order; pdf is null when it has none, and
 * `error` says which stored PDF cannot be merged, and why. */
export async function mergedTickets(sql: Sql, config: Config, orderId: string): Promise<MergedTickets> {
  if (!isOrderId(orderId) || !(await getOrder(sql, orderId))) return { found: false };
  const tickets = await ticketPdfsOfOrder(sql, orderId);
  if (tickets.length === 0) return { found: true, tickets: 0, pdf: null };
  const merged = await pdfWorkers(config).merge(tickets.map((t) => t.pdf));
  if (merged.ok) return { found: true, tickets: tickets.length, pdf: merged.pdf };
  const bad = tickets[merged.index ?? -1];
  const which = bad ? `ticket ${bad.id}${bad.seat ? ` (row ${bad.row ?? '-'}, seat ${bad.seat})` : ''}` : 'a ticket PDF';
  return {
    found: true,
    tickets: tickets.length,
    pdf: null,
    error: `the tickets of order ${orderId} cannot be merged into one PDF: ${which} cannot be loaded: ${merged.reason}; download the tickets one by one`,
  };
}
