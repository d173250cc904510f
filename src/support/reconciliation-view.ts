// The support page's section on the last reconciliation with Tixstock and its differences.
import type { z } from 'zod';
import type { AsRead, reconciliationWithDifferences } from '../replies.js';
import { type Html, html, when } from './html.js';

/** What the section shows of a run: GET /api/reconciliations/:id's reply as read from the database
 * (reconcile/runs.ts's getRun gives it; app.ts hands it in). */
export type ShownRun = AsRead<z.infer<typeof reconciliationWithDifferences>>;

const SHOWN = 100;
const shown = (v: unknown) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

export function lastReconciliation(run: ShownRun | undefined): Html {
  if (!run) {
    return html`<section id="reconciliation"><h2>Reconciliation with Tixstock</h2>
<p class="muted">No reconciliation has run yet (<span class="mono">npm run support -- reconcile</span>, or POST /api/reconciliations).</p></section>`;
  }
  const rows = run.differences.slice(0, SHOWN);
  return html`<section id="reconciliation" class="${run.status === 'failed' ? 'error' : ''}"><h2>Last reconciliation with Tixstock</h2><dl>
<dt>Run</dt><dd class="mono">${run.id}</dd>
<dt>Status</dt><dd><span class="status ${run.status === 'failed' ? 'failed' : ''}" id="reconciliation-status">${run.status}</span>
${run.repair ? 'repair' : 'report only'}, asked by ${run.requested_by}</dd>
<dt>Started</dt><dd>${when(run.started_at)}</dd>
<dt>Finished</dt><dd>${when(run.finished_at) || '—'}</dd>
<dt>Checked</dt><dd>${run.listings_checked} listing(s) on ${run.pages} page(s); ${run.without_id} without an id (not yet published to us); ${run.imported} imported</dd>
${run.error ? html`<dt>Why it failed</dt><dd id="reconciliation-error">${run.error}</dd>` : ''}
</dl>
${
  run.difference_count === 0
    ? html`<p class="muted">Nothing differed.</p>`
    : html`<h3>${run.difference_count} difference(s)${run.difference_count > SHOWN ? html` (the first ${SHOWN})` : ''}</h3><table>
<thead><tr><th>Listing</th><th>Field</th><th>Ours</th><th>Tixstock</th><th>Action</th><th>Note</th></tr></thead><tbody>
${rows.map(
  (d) => html`<tr><td class="mono">${d.listing_id}</td><td>${d.field}</td><td class="mono">${shown(d.ours)}</td>
<td class="mono">${shown(d.tixstock)}</td><td>${d.action}</td><td>${d.note ?? ''}</td></tr>`,
)}
</tbody></table>`
}</section>`;
}
