// order.eticket_fulfilment / order.mobile_ticket_fulfilment (Tixstock webhooks v1): one
// webhook per uploaded ticket. The file is decoded and proved a PDF after the body is parsed and
// found not to be a retry (before the transaction), so a bad file is a business failure answered
// 200 success:false, and the transaction only inserts.
import { z } from 'zod';
import { isListingId } from '../../inventory/listings.js';
import { ensureOrder, orderStatusOf } from '../../inventory/orders.js';
import { log } from '../../log.js';
import { queueFulfilmentNotice } from '../../jobs/mails.js';
import type { Config } from '../../config.js';
import { checkTicketFile, type FileCheck } from '../../tickets/check.js';
import { pdfWorkers } from '../../tickets/pdf-workers.js';
import { attachProofUrls, attachTicket } from '../../tickets/store.js';
import { applied, defineWebhook, rejected, type HandlerContext, type HandlerResult } from '../registry.js';
import type { ExternalFile } from '../stored-body.js';
import { JsonStringBytes } from '../../json-bytes.js';
import { looseBoolean, looseId, looseText, seat } from '../../tixstock/resources.js';

const text = looseText(true);

const fulfilment = z.looseObject({
  order_id: looseId,
  id: looseId.nullish(), // the listing id
  general_admission: looseBoolean.nullish(),
  row: text,
  seat: seat.nullish(),
  // The PDF in base64: a JsonStringBytes when large (largeStrings below), else a string.
  file: z.union([z.string(), z.instanceof(JsonStringBytes)]).nullish(),
  // An array in the docs; a lone string is taken as a list of one.
  proof_file_url: z
    .union([z.array(z.string()), z.string(), z.null()])
    .optional()
    .transform((v) => (v === null || v === undefined ? [] : Array.isArray(v) ? v : [v]))
    .transform((urls) => [...new Set(urls.map((u) => u.trim()).filter((u) => u !== ''))])
    .pipe(z.array(z.string().max(2000, 'is too long')).max(100, 'has too many URLs')),
});

/** The heavy check, once, before the transaction and only when the webhook is not a retry (see
 * `prepare`). The base64 text is dropped afterwards so it is not carried (or logged) any further. */
async function checkFile(config: Config, deadlineAt: number, { file, ...rest }: z.infer<typeof fulfilment>) {
  const given = typeof file === 'string' ? file.trim() : file;
  const check: FileCheck | null = given ? await checkTicketFile(given, pdfWorkers(config), deadlineAt) : null;
  return { ...rest, check };
}
type Fulfilment = Awaited<ReturnType<typeof checkFile>>;

async function handle(ctx: HandlerContext, kind: 'eticket' | 'mobile', d: Fulfilment): Promise<HandlerResult> {
  const refs = { order_id: d.order_id, listing_id: d.id && isListingId(d.id) ? d.id : null };
  const reply = { external_id: d.order_id };
  const refuse = async (message: string) => {
    log.warn('fulfilment refused', { delivery_id: ctx.deliveryId, kind, order_id: d.order_id, reason: message });
    return rejected({ ...reply, order_status: (await orderStatusOf(ctx.tx, d.order_id)) ?? null }, message, refs);
  };

  if (d.check && !d.check.ok) return refuse(d.check.fileError);
  if (!d.check && kind === 'eticket') return refuse('file is empty: an e-ticket fulfilment must carry the ticket PDF as base64');
  if (!d.check && d.proof_file_url.length === 0) return refuse('nothing to attach: file is empty and proof_file_url has no URLs');

  const { orderStatus } = await ensureOrder(ctx.tx, d.order_id);
  const where = {
    orderId: d.order_id,
    deliveryId: ctx.deliveryId,
    listingId: d.id ?? null,
    row: d.row ?? null,
    seat: d.seat ?? null,
  };
  const done: string[] = [];
  if (d.check) {
    const { ok: _, ...pdf } = d.check;
    const ticket = await attachTicket(ctx.tx, { ...where, ...pdf, kind, generalAdmission: d.general_admission ?? null });
    if (ticket.created) {
      await queueFulfilmentNotice(ctx.tx, ctx.config, { ticketId: ticket.id, orderId: d.order_id });
      done.push(`ticket ${ticket.id} attached (${pdf.pages} page(s), ${pdf.bytes} bytes)`);
    } else {
      done.push(`this PDF is already attached as ticket ${ticket.id}`);
    }
  }
  if (d.proof_file_url.length) {
    const added = await attachProofUrls(ctx.tx, { ...where, urls: d.proof_file_url });
    done.push(`${added} of ${d.proof_file_url.length} proof URL(s) added`);
  }
  return applied(
    { ...reply, order_status: orderStatus, success: true, message: `order ${d.order_id}: ${done.join('; ')}` },
    refs,
  );
}

/** The PDF that handle() attaches: its delivery's body keeps a reference instead of the base64. */
function ticketFile(input: unknown, d: Fulfilment): ExternalFile | undefined {
  const file = (input as { file?: unknown }).file;
  return d.check?.ok && file instanceof JsonStringBytes ? { value: file, pdf: d.check.pdf, sha256: d.check.sha256 } : undefined;
}

const fulfilmentWebhook = (kind: 'eticket' | 'mobile') =>
  defineWebhook({
    schema: fulfilment,
    retriesAreDuplicates: true,
    largeStrings: true,
    prepare: (ctx, data) => checkFile(ctx.config, ctx.deadlineAt, data),
    externalFile: ticketFile,
    handle: (ctx, data) => handle(ctx, kind, data),
  });

export const eticketFulfilment = fulfilmentWebhook('eticket');
export const mobileTicketFulfilment = fulfilmentWebhook('mobile');
