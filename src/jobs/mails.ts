// The two mails support relies on, queued as jobs in the caller's transaction: the notice sent to
// SUPPORT_EMAIL when a ticket PDF arrives, and an order's PDFs sent to any address on request.
// Their handlers (support/mail-jobs.ts) build and send them after the transaction commits.
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql, Tx } from '../db/connect.js';
import { enqueueJob } from './queue.js';

export const FULFILMENT_NOTICE = 'mail.fulfilment_notice';
export const ORDER_TICKETS = 'mail.order_tickets';

export const noticePayload = z.object({ ticket_id: z.string(), order_id: z.string(), to: z.string().nullable() });
export const orderTicketsPayload = z.object({ order_id: z.string(), to: z.string(), requested_by: z.string() });

export function queueFulfilmentNotice(tx: Tx, config: Config, t: { ticketId: string; orderId: string }): Promise<string> {
  const payload: z.infer<typeof noticePayload> = { ticket_id: t.ticketId, order_id: t.orderId, to: config.SUPPORT_EMAIL ?? null };
  return enqueueJob(tx, { kind: FULFILMENT_NOTICE, payload, orderId: t.orderId });
}

export function queueOrderTickets(db: Sql | Tx, r: { orderId: string; to: string; requestedBy: string }): Promise<string> {
  const payload: z.infer<typeof orderTicketsPayload> = { order_id: r.orderId, to: r.to, requested_by: r.requestedBy };
  return enqueueJob(db, { kind: ORDER_TICKETS, payload, orderId: r.orderId });
}
