// The support page's delivery log, like a webhook provider's: the last 7 days by day, each
// delivery with its headers, body, reply and outcome, filters by type and outcome, and the
// last error at the top. Every value goes through `html`, which escapes it.
import { isUtf8 } from 'node:buffer';
import {
  type DeliveryDay,
  type DeliveryDetail,
  type DeliveryFilter,
  type DeliveryRow,
  SHOWN_BODY_BYTES,
} from './delivery-log.js';
import { OUTCOMES } from '../replies.js';
import { Html, html, when } from './html.js';
import { layout, orderHref } from './views.js';

export const deliveryHref = (id: string) => `/support/delivery?id=${encodeURIComponent(id)}`;

function deliveriesHref(f: DeliveryFilter): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `/support/deliveries?${s}` : '/support/deliveries';
}

const isError = (outcome: string) => !['applied', 'duplicate'].includes(outcome);
const outcomeBadge = (d: { outcome: string; status: number }) =>
  html`<span class="status ${isError(d.outcome) ? 'failed' : ''}">${d.outcome} · ${d.status}</span>`;

function option(value: string, selected: string | undefined, label = value): Html {
  return html`<option value="${value}" ${value === (selected ?? '') ? new Html('selected') : ''}>${label}</option>`;
}

function filterForm(f: DeliveryFilter, types: string[]): Html {
  return html`<form method="get" action="/support/deliveries" id="delivery-filter">
${f.day ? html`<input type="hidden" name="day" value="${f.day}">` : ''}
<label>Type <select name="type">${option('', f.type, 'all types')}${types.map((t) => option(t, f.type))}</select></label>
<label>Outcome <select name="outcome">${option('', f.outcome, 'all outcomes')}${OUTCOMES.map((o) => option(o, f.outcome))}</select></label>
<button type="submit">Filter</button> <a href="/support/deliveries">Clear</a></form>`;
}

export function deliveriesPage(p: {
  filter: DeliveryFilter;
  days: DeliveryDay[];
  rows: DeliveryRow[];
  types: string[];
  lastError: DeliveryRow | undefined;
  limit: number;
}): Html {
  const f = p.filter;
  return layout(
    'Deliveries',
    html`
<h1>Webhook deliveries <span class="muted">(last 7 days)</span></h1>
<section id="last-error" class="${p.lastError ? 'error' : 'notice'}"><h2>Last error</h2>${
      p.lastError
        ? html`<p><a href="${deliveryHref(p.lastError.id)}">Delivery ${p.lastError.id}</a> · ${when(p.lastError.received_at)} ·
${p.lastError.type ?? '(no type)'} · ${outcomeBadge(p.lastError)}</p><p class="mono">${p.lastError.message ?? ''}</p>`
        : html`<p>No delivery failed in the last 7 days.</p>`
    }</section>
<section>${filterForm(f, p.types)}</section>
<section id="days"><h2>By day (UTC)</h2>${
      p.days.length === 0
        ? html`<p class="muted">No deliveries in the last 7 days.</p>`
        : html`<table>
<thead><tr><th>Day</th><th>Deliveries</th><th>Not applied</th></tr></thead><tbody>
${p.days.map(
  (
    d,
  ) => html`<tr${d.day === f.day ? new Html(' class="selected"') : ''}><td><a href="${deliveriesHref({ ...f, day: d.day })}">${d.day}</a></td>
<td>${d.total}</td><td>${d.errors ? html`<span class="status failed">${d.errors}</span>` : '0'}</td></tr>`,
)}
</tbody></table>`
    }</section>
<section id="deliveries"><h2>${f.day ? `Deliveries of ${f.day}` : 'Latest deliveries'}${p.rows.length === p.limit ? ` (the latest ${p.limit})` : ''}</h2>
${
  p.rows.length === 0
    ? html`<p class="muted">No delivery matches.</p>`
    : html`<table>
<thead><tr><th>Received</th><th>Delivery</th><th>Type</th><th>Outcome</th><th>Size</th><th>Message</th></tr></thead><tbody>
${p.rows.map(
  (d) => html`<tr><td>${when(d.received_at)}</td><td class="mono"><a href="${deliveryHref(d.id)}">${d.id}</a></td>
<td>${d.type ?? '—'} <span class="muted">${d.version}</span></td><td>${outcomeBadge(d)}</td><td>${d.bytes} B</td>
<td class="mono">${d.message ?? ''}</td></tr>`,
)}
</tbody></table>`
}</section>`,
  );
}

function bodyOf(d: DeliveryDetail): Html {
  const cut = d.bytes > SHOWN_BODY_BYTES;
  if (!isUtf8(d.body_start) && !cut) return html`<p class="muted">${d.bytes} bytes, not UTF-8 text.</p>`;
  const text = d.body_start.toString('utf8');
  return html`${cut ? html`<p class="muted">The first ${SHOWN_BODY_BYTES} of ${d.bytes} bytes (all of it: GET /api/deliveries/${d.id}).</p>` : ''}
${d.redacted ? html`<p class="muted">Secrets (passwords) were redacted before the body was stored.</p>` : ''}
<pre class="mono" id="body">${text}</pre>`;
}

export function deliveryPage(d: DeliveryDetail): Html {
  const link = (id: string | null) => (id ? html`<a href="${deliveryHref(id)}">${id}</a>` : '—');
  return layout(
    `Delivery ${d.id}`,
    html`
<p><a href="/support/deliveries">← All deliveries</a></p>
<h1>Delivery <span class="mono" id="delivery-id">${d.id}</span> ${outcomeBadge(d)}</h1>
<section><h2>Delivery</h2><dl>
<dt>Received</dt><dd>${when(d.received_at)}</dd>
<dt>Type</dt><dd>${d.type ?? '—'}</dd>
<dt>Version</dt><dd>${d.version}</dd>
<dt>Path</dt><dd class="mono">${d.path}</dd>
<dt>Outcome</dt><dd id="outcome">${d.outcome} (HTTP ${d.status})</dd>
<dt>Error</dt><dd class="mono" id="error">${d.error ?? '—'}</dd>
<dt>Retry of</dt><dd>${link(d.duplicate_of)}</dd>
<dt>Replay of</dt><dd>${link(d.replay_of)}</dd>
<dt>Listing</dt><dd>${d.listing_id ?? '—'}</dd>
<dt>Event</dt><dd>${d.event_id ?? '—'}</dd>
<dt>Order</dt><dd>${d.order_id ? html`<a href="${orderHref(d.order_id)}">${d.order_id}</a>` : '—'}</dd>
<dt>Broker</dt><dd>${d.broker_id ?? '—'}</dd>
</dl></section>
<section id="headers"><h2>Headers</h2><table><tbody>
${Object.entries(d.headers).map(([k, v]) => html`<tr><th>${k}</th><td class="mono">${v}</td></tr>`)}
</tbody></table></section>
<section id="reply"><h2>Reply</h2><pre class="mono">${JSON.stringify(d.reply, null, 2)}</pre></section>
<section><h2>Body (${d.bytes} bytes)</h2>${bodyOf(d)}</section>`,
  );
}
