// Outgoing mail (nodemailer) and its record. Without SMTP_URL, or without a recipient, a mail
// is written to the log and recorded with transport "log": never silently dropped.
import nodemailer from 'nodemailer';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Tx } from '../db/connect.js';
import { log } from '../log.js';

export const emailAddress = z
  .string()
  .trim()
  .max(254, 'is too long')
  .pipe(z.email('must be an e-mail address such as someone@example.org'));

export interface OutgoingMail {
  kind: string;
  jobId: string;
  orderId: string | null;
  to: string | null;
  subject: string;
  text: string;
  attachments: Attachment[];
}

/** A PDF to attach. Its bytes are read only when the mail is really sent: a mail that is only
 * recorded (no SMTP_URL or no recipient) would otherwise load tens of MB for nothing. */
export interface Attachment {
  filename: string;
  bytes: number;
  sha256: string;
  load(): Promise<Buffer>;
}

export interface SentMail {
  transport: 'smtp' | 'log';
  messageId: string | null;
  response: string | null;
}

/** One Message-ID per job, so a retry after a crash mid-send can be recognised by the receiver. */
function messageIdFor(config: Config, jobId: string): string {
  const domain = /@([^@>\s]+)>?\s*$/.exec(config.MAIL_FROM)?.[1] ?? 'localhost';
  return `<tixstock-job-${jobId}@${domain}>`;
}

export async function sendMail(config: Config, mail: OutgoingMail): Promise<SentMail> {
  const messageId = messageIdFor(config, mail.jobId);
  if (!config.SMTP_URL || !mail.to) {
    // Ids and sizes only: the address and the PDFs are personal data.
    log.info('mail recorded, not sent', {
      reason: !config.SMTP_URL ? 'SMTP_URL is unset' : 'no recipient (SUPPORT_EMAIL is unset)',
      job_id: mail.jobId,
      kind: mail.kind,
      order_id: mail.orderId,
      subject: mail.subject,
      attachments: mail.attachments.map((a) => ({ filename: a.filename, bytes: a.bytes })),
    });
    return { transport: 'log', messageId, response: null };
  }
  const attachments = [];
  for (const a of mail.attachments)
    attachments.push({ filename: a.filename, content: await a.load(), contentType: 'application/pdf' });
  const transport = nodemailer.createTransport(config.SMTP_URL, {});
  try {
    const info = await transport.sendMail({
      from: config.MAIL_FROM,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
      messageId,
      attachments,
    });
    return { transport: 'smtp', messageId: info.messageId ?? messageId, response: info.response ?? null };
  } finally {
    transport.close();
  }
}

/** The record of a mail, written in the transaction that marks its job done. */
export async function recordMail(tx: Tx, mail: OutgoingMail, sent: SentMail): Promise<void> {
  const attachments = mail.attachments.map((a) => ({ filename: a.filename, bytes: a.bytes, sha256: a.sha256 }));
  await tx`
    insert into mails (job_id, kind, order_id, to_address, subject, attachments, transport, message_id, smtp_response)
    values (${mail.jobId}, ${mail.kind}, ${mail.orderId}, ${mail.to}, ${mail.subject}, ${tx.json(attachments)},
            ${sent.transport}, ${sent.messageId}, ${sent.response})`;
}
