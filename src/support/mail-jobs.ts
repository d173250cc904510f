// The handlers of the two mail jobs (jobs/mails.ts queues them): each builds its mail from the
// stored tickets, sends it and records it; also the mails sent for an order.
import type { Config } from '../config.js';
import type { Sql, Tx } from '../db/connect.js';
import { FULFILMENT_NOTICE, noticePayload, ORDER_TICKETS, orderTicketsPayload } from '../jobs/mails.js';
import type { JobHandler } from '../jobs/worker.js';
import { pdfFileName } from '../tickets/pdf-name.js';
import { seatOf, ticketInfo, ticketPdf, ticketsOfOrder, type TicketInfo } from '../tickets/store.js';
import { recordMail, sendMail, type Attachment, type OutgoingMail } from './mail.js';

const seatText = (t: Pick<TicketInfo, 'row' | 'seat'>) => seatOf(t).join(' ') || 'no seat given';

const describe = (t: TicketInfo) =>
  `- ticket ${t.id}: listing ${t.listing_id ?? '-'}, ${seatText(t)}, ${t.pages} page(s), ${t.bytes} bytes, sha256 ${t.sha256}`;

/** A ticket as an attachment, its PDF read from the database only if the mail is sent. */
function attachment(sql: Sql, orderId: string, t: TicketInfo): Attachment {
  return {
    filename: pdfFileName(orderId, 'ticket', t.id),
    bytes: t.bytes,
    sha256: t.sha256,
    load: async () => {
      const row = await ticketPdf(sql, t.id);
      if (!row) throw new Error(`ticket ${t.id} not found`);
      return row.pdf;
    },
  };
}

async function send(ctx: { config: Config }, mail: OutgoingMail) {
  const sent = await sendMail(ctx.config, mail);
  return (tx: Tx) => recordMail(tx, mail, sent);
}

export const fulfilmentNoticeJob: JobHandler = async (job, ctx) => {
  const p = noticePayload.parse(job.payload);
  const ticket = await ticketInfo(ctx.sql, p.ticket_id);
  if (!ticket) throw new Error(`ticket ${p.ticket_id} not found`);
  return send(ctx, {
    kind: job.kind,
    jobId: job.id,
    orderId: p.order_id,
    to: p.to,
    subject: `Ticket received for order ${p.order_id} (${seatText(ticket)})`,
    text:
      `Tixstock delivered a ${ticket.kind === 'mobile' ? 'mobile ticket' : 'e-ticket'} for order ${p.order_id}.\n\n` +
      `${describe(ticket)}\n\nThe PDF is attached, byte for byte as received.\n`,
    attachments: [attachment(ctx.sql, p.order_id, ticket)],
  });
};

export const orderTicketsJob: JobHandler = async (job, ctx) => {
  const p = orderTicketsPayload.parse(job.payload);
  const tickets = await ticketsOfOrder(ctx.sql, p.order_id);
  if (tickets.length === 0) throw new Error(`order ${p.order_id} has no ticket PDFs`);
  return send(ctx, {
    kind: job.kind,
    jobId: job.id,
    orderId: p.order_id,
    to: p.to,
    subject: `Your tickets for order ${p.order_id}`,
    text:
      `The ${tickets.length} ticket PDF(s) of order ${p.order_id} are attached, in seat order:\n\n` +
      `${tickets.map(describe).join('\n')}\n`,
    attachments: tickets.map((t) => attachment(ctx.sql, p.order_id, t)),
  });
};

export async function mailsOfOrder(sql: Sql, orderId: string, limit = 50) {
  return sql<
    {
      id: string;
      job_id: string | null;
      kind: string;
      to_address: string | null;
      subject: string;
      transport: 'smtp' | 'log';
      attachments: { filename: string; bytes: number; sha256: string }[];
      sent_at: Date;
    }[]
  >`
    select id, job_id, kind, to_address, subject, transport, attachments, sent_at
      from mails where order_id = ${orderId} order by id desc limit ${limit}`;
}

/** Job kind -> handler, for the worker (main.ts). A kind is never renamed: rows already queued carry it. */
export const mailJobHandlers: Record<string, JobHandler> = {
  [FULFILMENT_NOTICE]: fulfilmentNoticeJob,
  [ORDER_TICKETS]: orderTicketsJob,
};
