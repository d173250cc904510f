// The support page's HTML: plain forms and links, no JavaScript. Every value goes through
// `html`, which escapes it.
import type { RefusedFulfilment } from './delivery-log.js';
import { externalLink, Html, html, when } from './html.js';
import type { JobView } from '../jobs/queue.js';
import type { StorageStats } from '../db/stats.js';
import type { OrderSummary } from '../inventory/orders.js';
import { seatOf, type TicketInfo } from '../tickets/store.js';
import type { OrderView } from './order-view.js';

const STYLE = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d3557;color:#fff;padding:.8rem 1.5rem}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem 3rem}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:1rem 1.2rem;margin:1rem 0}
h1{font-size:1.4rem;margin:.4rem 0}h2{font-size:1.1rem;margin:0 0 .6rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eceff3;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;color:#5a6475;letter-spacing:.03em}
input[type=search],input[type=email]{padding:.45rem .6rem;border:1px solid #b8c0cc;border-radius:4px;width:22rem;max-width:100%}
button,.button{padding:.45rem .9rem;border:0;border-radius:4px;background:#2a6fdb;color:#fff;font-weight:600;cursor:pointer;text-decoration:none;display:inline-block}
.muted{color:#5a6475}.mono{font-family:ui-monospace,Menlo,monospace;font-size:.85em}
.notice{background:#e7f5ea;border-color:#a9d8b5}.error{background:#fdecec;border-color:#f0b4b4}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{color:#5a6475}dd{margin:0}
.status{display:inline-block;padding:.05rem .5rem;border-radius:999px;background:#e4ebf7;font-size:.85em}
.failed{background:#fbd5d5}
pre{white-space:pre-wrap;word-break:break-all;max-height:32rem;overflow:auto;background:#f5f6f8;padding:.6rem;margin:0}
tr.selected td{background:#eef3fc}label{margin-right:1rem}`;

export function layout(title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Tixstock support</title><style>${new Html(STYLE)}</style></head>
<body><header><a href="/support">Tixstock support</a> · <a href="/support/deliveries">Deliveries</a></header><main>${body}</main></body></html>`;
}

export const orderHref = (id: string) => `/support/order?id=${encodeURIComponent(id)}`;
const ticketHref = (id: string) => `/support/ticket.pdf?id=${encodeURIComponent(id)}`;
const mergedHref = (id: string) => `/support/order/tickets.pdf?id=${encodeURIComponent(id)}`;
const seatText = (t: Pick<TicketInfo, 'row' | 'seat'>) =>
  seatOf(t)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join(', ') || '—';

function searchForm(q: string): Html {
  return html`<section><h2>Find an order</h2>
<form method="get" action="/support" role="search">
<input type="search" name="q" value="${q}" placeholder="Order id, customer e-mail or name" aria-label="Order id, customer e-mail or name" required autofocus>
<button type="submit">Search</button></form></section>`;
}

function results(q: string, orders: OrderSummary[]): Html {
  if (q === '') return html``;
  if (orders.length === 0) return html`<section id="results"><h2>No order matches “${q}”</h2></section>`;
  return html`<section id="results"><h2>${orders.length} order(s) matching “${q}”</h2><table>
<thead><tr><th>Order</th><th>Status</th><th>Customer</th><th>E-mail</th><th>Tickets</th><th>Updated</th></tr></thead><tbody>
${orders.map(
  (o) => html`<tr><td><a href="${orderHref(o.id)}">${o.id}</a></td><td>${o.order_status ?? '—'}</td>
<td>${o.customer_name ?? '—'}</td><td>${o.customer_email ?? '—'}</td><td>${o.tickets}</td><td>${when(o.updated_at)}</td></tr>`,
)}
</tbody></table></section>`;
}

function recentFulfilments(tickets: TicketInfo[]): Html {
  return html`<section id="recent"><h2>Recent fulfilments</h2>${
    tickets.length === 0
      ? html`<p class="muted">No ticket PDFs received yet.</p>`
      : html`<table>
<thead><tr><th>Received</th><th>Order</th><th>Kind</th><th>Seat</th><th>Pages</th><th>Size</th><th></th></tr></thead><tbody>
${tickets.map(
  (t) => html`<tr><td>${when(t.received_at)}</td><td><a href="${orderHref(t.order_id)}">${t.order_id}</a></td><td>${t.kind}</td>
<td>${seatText(t)}</td><td>${t.pages}</td><td>${kb(t.bytes)}</td><td><a href="${ticketHref(t.id)}">PDF</a></td></tr>`,
)}
</tbody></table>`
  }</section>`;
}

function refused(rows: RefusedFulfilment[]): Html {
  if (rows.length === 0) return html``;
  return html`<section id="refused"><h2>Refused fulfilment webhooks</h2><table>
<thead><tr><th>Received</th><th>Delivery</th><th>Type</th><th>Order</th><th>Why</th></tr></thead><tbody>
${rows.map(
  (r) => html`<tr><td>${when(r.received_at)}</td><td class="mono">${r.id}</td><td>${r.type}</td>
<td>${r.order_id ? html`<a href="${orderHref(r.order_id)}">${r.order_id}</a>` : '—'}</td><td>${r.message ?? r.outcome}</td></tr>`,
)}
</tbody></table></section>`;
}

function jobRows(jobs: JobView[], csrf: string): Html {
  return html`<table><thead><tr><th>Job</th><th>Kind</th><th>Order</th><th>State</th><th>Attempts</th><th>Last error</th><th></th></tr></thead><tbody>
${jobs.map(
  (j) => html`<tr><td class="mono">${j.id}</td><td>${j.kind}</td>
<td>${j.order_id ? html`<a href="${orderHref(j.order_id)}">${j.order_id}</a>` : '—'}</td>
<td><span class="status ${j.status === 'failed' ? 'failed' : ''}">${j.status === 'pending' && j.last_error ? `retrying at ${when(j.run_at)}` : j.status}</span></td>
<td>${j.attempts} / ${j.max_attempts}</td><td class="mono">${j.last_error ?? ''}</td>
<td>${
    j.status === 'failed'
      ? html`<form method="post" action="/support/job/retry"><input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="id" value="${j.id}"><button type="submit">Retry</button></form>`
      : ''
  }</td></tr>`,
)}
</tbody></table>`;
}

function storage(s: StorageStats): Html {
  const d = s.database;
  const last = s.retention.last_run;
  return html`<section id="storage" class="${d.warning ? 'error' : ''}"><h2>Storage</h2><dl>
<dt>Database</dt><dd id="database-size">${kb(d.bytes)}${d.limit_bytes ? ` of ${kb(d.limit_bytes)} (${d.used_percent}% used${d.warning ? ': over 80%, free space or upgrade the plan' : ''})` : ' (DATABASE_SIZE_LIMIT not set)'}</dd>
<dt>Webhook bodies kept</dt><dd>${s.retention.body_retention === '0' ? 'for ever (DELIVERY_BODY_RETENTION=0)' : s.retention.body_retention}</dd>
<dt>Last retention run</dt><dd id="retention-last">${last ? `${when(last.finished_at)}: ${last.rows} bodies dropped, ${kb(last.bytes)} freed` : 'none yet'}</dd>
</dl><table><thead><tr><th>Table</th><th>Total</th><th>Row data</th><th>Out of line (TOAST)</th><th>Indexes</th><th>Rows (estimate)</th></tr></thead><tbody>
${s.tables.map(
  (
    t,
  ) => html`<tr><td class="mono">${t.name}</td><td>${kb(t.total_bytes)}</td><td>${kb(t.table_bytes)}</td><td>${kb(t.toast_bytes)}</td>
<td>${kb(t.index_bytes)}</td><td>${t.rows_estimate < 0 ? '—' : Math.round(t.rows_estimate)}</td></tr>`,
)}
</tbody></table></section>`;
}

export function homePage(p: {
  q: string;
  orders: OrderSummary[];
  recent: TicketInfo[];
  refused: RefusedFulfilment[];
  failedMail: JobView[];
  storage: StorageStats;
  csrf: string;
  flash?: string;
  reconciliation?: Html;
}): Html {
  return layout(
    p.q ? `Search: ${p.q}` : 'Orders',
    html`
${p.flash ? html`<section class="notice" role="status">${p.flash}</section>` : ''}
${searchForm(p.q)}${results(p.q, p.orders)}${recentFulfilments(p.recent)}
<section id="failed-mail"><h2>Failed deliveries (mail)</h2>${
      p.failedMail.length === 0 ? html`<p class="muted">No mail is failing.</p>` : jobRows(p.failedMail, p.csrf)
    }</section>
${refused(p.refused)}${p.reconciliation ?? ''}${storage(p.storage)}`,
  );
}

const kb = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : n === 0 ? '0 KB' : `${Math.max(1, Math.round(n / 1024))} KB`;

interface MailRow {
  id: string;
  kind: string;
  to_address: string | null;
  subject: string;
  transport: 'smtp' | 'log';
  sent_at: Date;
  attachments: { filename: string; bytes: number }[];
}

export function orderPage(p: { order: OrderView; mails: MailRow[]; jobs: JobView[]; csrf: string; flash?: string }): Html {
  const o = p.order;
  const c = (o.customer ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  const pending = p.jobs.filter((j) => j.status !== 'done');
  return layout(
    `Order ${o.id}`,
    html`
${p.flash ? html`<section class="notice" role="status">${p.flash}</section>` : ''}
<h1>Order <span class="mono" id="order-id">${o.id}</span> <span class="status">${o.order_status ?? 'no status yet'}</span></h1>
<section><h2>Order</h2><dl>
<dt>Tixstock status</dt><dd>${o.status ?? '—'}</dd>
<dt>Our status</dt><dd>${o.reseller_status ?? '— (Tixstock’s is used)'}</dd>
${o.tixstock_sync ? html`<dt>Sent to Tixstock</dt><dd id="tixstock-sync">${o.tixstock_sync.status}${o.tixstock_sync.last_error ? ` (last error: ${o.tixstock_sync.last_error})` : ''}</dd>` : ''}
<dt>Date</dt><dd>${o.date ?? '—'}</dd>
<dt>Customer</dt><dd>${o.customer_name ?? '—'}</dd>
<dt>E-mail</dt><dd>${o.customer_email ?? '—'}</dd>
<dt>Phone</dt><dd>${str(c.contact_number) || '—'}</dd>
<dt>Quantity</dt><dd>${o.quantity ?? '—'}</dd>
<dt>Total</dt><dd>${o.grand_total ? `${o.grand_total} ${o.currency ?? ''}` : '—'}</dd>
<dt>Tracking id</dt><dd>${o.shipping_tracking_id ?? '—'}</dd>
<dt>Shipping label</dt><dd>${o.shipping_label ? externalLink(o.shipping_label) : '—'}</dd>
</dl></section>
<section id="tickets"><h2>Tickets (${o.tickets.length})</h2>
${
  o.tickets.length === 0
    ? html`<p class="muted">No ticket PDF has arrived for this order.</p>`
    : html`<table>
<thead><tr><th>Ticket</th><th>Kind</th><th>Listing</th><th>Seat</th><th>Pages</th><th>Size</th><th>SHA-256</th><th>Received</th><th></th></tr></thead><tbody>
${o.tickets.map(
  (t) => html`<tr><td class="mono">${t.id}</td><td>${t.kind}</td><td>${t.listing_id ?? '—'}</td><td>${seatText(t)}</td>
<td>${t.pages}</td><td>${kb(t.bytes)}</td><td class="mono" title="${t.sha256}">${t.sha256.slice(0, 12)}…</td><td>${when(t.received_at)}</td>
<td><a href="${ticketHref(t.id)}" id="download-${t.id}">Download</a></td></tr>`,
)}
</tbody></table>
<p><a class="button" href="${mergedHref(o.id)}" id="download-all">Download all (one PDF)</a></p>
<form method="post" action="/support/order/email" id="email-form">
<input type="hidden" name="csrf" value="${p.csrf}"><input type="hidden" name="id" value="${o.id}">
<label>E-mail the ${o.tickets.length} PDF(s) to <input type="email" name="to" required placeholder="someone@example.org"></label>
<button type="submit">Send</button></form>`
}</section>
${o.proof_file_urls.length ? html`<section id="proofs"><h2>Proof files</h2><ul>${o.proof_file_urls.map((u) => html`<li>${externalLink(u)}</li>`)}</ul></section>` : ''}
<section id="mail"><h2>Mail</h2>
${pending.length ? jobRows(pending, p.csrf) : ''}
${
  p.mails.length === 0
    ? html`<p class="muted">No mail sent for this order.</p>`
    : html`<table>
<thead><tr><th>Sent</th><th>To</th><th>Subject</th><th>Attachments</th><th>Via</th></tr></thead><tbody>
${p.mails.map(
  (m) => html`<tr><td>${when(m.sent_at)}</td><td>${m.to_address ?? '(no recipient)'}</td><td>${m.subject}</td>
<td>${m.attachments.map((a) => a.filename).join(', ')}</td><td>${m.transport === 'log' ? 'log only (not sent)' : 'SMTP'}</td></tr>`,
)}
</tbody></table>`
}</section>`,
  );
}

export function messagePage(status: number, message: string): Html {
  return layout(
    `Error ${status}`,
    html`<section class="error" role="alert"><h2>${status === 404 ? 'Not found' : 'Cannot do that'}</h2>
<p id="message">${message}</p><p><a href="/support">Back to search</a></p></section>`,
  );
}
