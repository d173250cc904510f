// A reconciliation run: pages through Tixstock's tickets/get (50 a page, until links.next is
// null or a page is short, at most pageCap pages), compares every listing with ours and, with
// `repair`, sets Tixstock's values, imports what we lack and tombstones what Tixstock no longer
// has (after a direct tickets/get?listing_id= says so: offset paging can skip rows while
// listings change). Each page is one transaction of its repairs and its differences, so a run
// that fails has changed exactly the pages it finished. No transaction is open while Tixstock
// is asked; a few pages of listings are in memory at a time (the ids seen are kept).
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { listingFields } from '../inventory/listing-fields.js';
import { isListingId, type ListingFields } from '../inventory/listings.js';
import {
  addMissingEvents,
  currentSnapshot,
  importListings,
  listingsToCompare,
  publishedIdsUnchangedSince,
  repairListings,
  tombstoneListing,
  type ComparedListing,
} from '../inventory/reconcile-writes.js';
import { log } from '../log.js';
import {
  TixstockError,
  type TicketsQuery,
  type TixstockClient,
  type TixstockListing,
  type TixstockReply,
} from '../tixstock/contract.js';
import type { EventResource } from '../tixstock/resources.js';
import { compareListing, idOf, readListing, viewOf, type Difference } from './compare.js';
import { createRun, finishRun, heartbeat, recordPage } from './runs.js';

export const PER_PAGE = 50;
/** Page transactions at once: enough to hide their round trips behind the reading, few enough
 * to leave the pool (DATABASE_POOL_SIZE) to the webhooks. */
const WRITERS = 3;

export interface Progress {
  id: string;
  phase: 'pages' | 'missing';
  pages: number;
  listings: number;
  withoutId: number;
  imported: number;
  differences: number;
}

export interface RunOptions {
  repair: boolean;
  requestedBy: 'api' | 'cli' | 'schedule';
  /** DISPLAY_PRICE_MARKUP_PERCENT: our display price of a repaired or imported listing. */
  markupPercent: string;
  /** The run's own pace: calls to Tixstock per minute at most (see runOptionsFrom). */
  callsPerMinute?: number;
  /** Pages read at most; a run that reaches it fails (what lies beyond was not compared). */
  pageCap?: number;
  /** After a 429 the same page is asked again after this pause, up to rateLimitTries times. */
  rateLimitPauseMs?: number;
  rateLimitTries?: number;
  /** Tixstock unavailable (5xx, no answer): tries with doubling delays from retryDelayMs. */
  unavailableTries?: number;
  retryDelayMs?: number;
  heartbeatMs?: number;
  onProgress?: (p: Progress) => void;
}

export interface RunOutcome {
  id: string;
  status: 'done' | 'failed';
  differences: number;
  error: string | null;
}

/** Why a run ended failed; its message is the run's `error`. */
class RunFailure extends Error {}

const NOTE_CHANGED =
  'changed here after the page was read (a webhook or a sale of ours), or a hold of ours on it is not settled with Tixstock yet: that wins; the next run compares again';
const NOTE_TOMBSTONE = 'deleted here: a tombstone is never revived; if Tixstock is right, ask Tixstock to send ticket.add again';
const NOTE_NOT_OURS = 'the id is not one this service issues: not imported';

/** The options a run takes from the configuration. It calls Tixstock at most at half the
 * client's rate limit (TIXSTOCK_API_RATE_PER_MINUTE, shared by every call of the process), so
 * that the holds and orders of our customers keep finding a turn while a run reads every page. */
export function runOptionsFrom(config: Pick<Config, 'DISPLAY_PRICE_MARKUP_PERCENT' | 'TIXSTOCK_API_RATE_PER_MINUTE'>) {
  return { markupPercent: config.DISPLAY_PRICE_MARKUP_PERCENT, callsPerMinute: config.TIXSTOCK_API_RATE_PER_MINUTE / 2 };
}

const running = new Map<string, { abort: AbortController; finished: Promise<RunOutcome> }>();

/** Ends every run of this process as failed (at shutdown), and waits for them to stop. */
export async function abortRuns(reason: string): Promise<void> {
  const runs = [...running.values()];
  for (const r of runs) r.abort.abort(new RunFailure(reason));
  await Promise.all(runs.map((r) => r.finished));
}

/** A run started here: its id, and its end. */
export interface StartedRun {
  id: string;
  finished: Promise<RunOutcome>;
}

/** Starts a run (RunInProgress when one is running anywhere); `finished` resolves when it ends,
 * done or failed, and never rejects. */
export async function startRun(sql: Sql, client: TixstockClient, opts: RunOptions): Promise<StartedRun> {
  const id = await createRun(sql, { repair: opts.repair, requestedBy: opts.requestedBy });
  const abort = new AbortController();
  const finished = execute(sql, client, id, opts, abort).finally(() => running.delete(id));
  running.set(id, { abort, finished });
  return { id, finished };
}

async function execute(
  sql: Sql,
  client: TixstockClient,
  id: string,
  opts: RunOptions,
  abort: AbortController,
): Promise<RunOutcome> {
  const { signal } = abort;
  const totals: Progress = { id, phase: 'pages', pages: 0, listings: 0, withoutId: 0, imported: 0, differences: 0 };
  const beat = setInterval(() => {
    heartbeat(sql, id).then(
      (alive) => alive || signal.aborted || abort.abort(new RunFailure('failed by another process: no heartbeat was seen')),
      () => {}, // the database is away: the next page fails the run if it stays away
    );
  }, opts.heartbeatMs ?? 10_000);
  beat.unref();
  log.info('reconciliation started', { reconciliation_id: id, repair: opts.repair, requested_by: opts.requestedBy });
  try {
    const run = new Run(sql, client, id, opts, signal, totals);
    await run.pages();
    totals.phase = 'missing';
    await run.missing();
    await finishRun(sql, id, 'done');
    log.info('reconciliation done', {
      reconciliation_id: id,
      pages: totals.pages,
      listings: totals.listings,
      differences: totals.differences,
      imported: totals.imported,
    });
    return { id, status: 'done', differences: totals.differences, error: null };
  } catch (err) {
    const reason = err instanceof RunFailure ? err.message : `internal error: ${(err as Error)?.message ?? String(err)}`;
    log.error('reconciliation failed', { reconciliation_id: id, reason, pages: totals.pages });
    await finishRun(sql, id, 'failed', reason).catch((e) =>
      log.error('could not record the failed reconciliation; it is failed as stale later', { reconciliation_id: id, error: e }),
    );
    return { id, status: 'failed', differences: totals.differences, error: reason };
  } finally {
    clearInterval(beat);
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

class Run {
  constructor(
    readonly sql: Sql,
    readonly client: TixstockClient,
    readonly id: string,
    readonly opts: RunOptions,
    readonly signal: AbortSignal,
    readonly totals: Progress,
  ) {}

  private checkAborted(): void {
    if (this.signal.aborted) throw this.signal.reason instanceof RunFailure ? this.signal.reason : new RunFailure('aborted');
  }

  private nextCallAt = 0;

  /** tickets/get at the run's pace, asked again after a 429 (pausing) or while Tixstock is
   * unavailable, within bounds. */
  private async fetch(q: TicketsQuery): Promise<TixstockReply<TixstockListing[]>> {
    const what = q.listingId ? `tickets/get?listing_id=${q.listingId}` : `tickets/get page ${q.page}`;
    const rateTries = this.opts.rateLimitTries ?? 5;
    const otherTries = this.opts.unavailableTries ?? 4;
    let rateLimited = 0;
    let unavailable = 0;
    for (;;) {
      this.checkAborted();
      const wait = this.nextCallAt - Date.now();
      if (wait > 0) await sleep(wait, this.signal);
      this.checkAborted();
      if (this.opts.callsPerMinute) this.nextCallAt = Date.now() + 60_000 / this.opts.callsPerMinute;
      try {
        const reply = await this.client.getTickets(q);
        if (!Array.isArray(reply.data)) throw new RunFailure(`${what}: Tixstock's reply has no list of listings in data`);
        return reply;
      } catch (err) {
        if (!(err instanceof TixstockError)) throw err;
        if (err.kind === 'rate_limited' && ++rateLimited < rateTries) {
          log.warn('reconciliation rate limited by Tixstock: pausing', {
            reconciliation_id: this.id,
            page: q.page,
            times: rateLimited,
          });
          await sleep(this.opts.rateLimitPauseMs ?? 60_000, this.signal);
          continue;
        }
        if ((err.kind === 'unavailable' || err.kind === 'unknown_outcome') && ++unavailable < otherTries) {
          await sleep((this.opts.retryDelayMs ?? 2000) * 2 ** (unavailable - 1), this.signal);
          continue;
        }
        this.checkAborted();
        const times =
          err.kind === 'rate_limited'
            ? rateLimited
            : err.kind === 'unavailable' || err.kind === 'unknown_outcome'
              ? unavailable
              : 1;
        throw new RunFailure(`${what}: ${err.message}${times > 1 ? ` (${times} tries)` : ''}`);
      }
    }
  }

  /** Listings written after this (during the run) are not looked for as missing. */
  private startSnapshot = '';

  /** The snapshot, then the page: the snapshot says which of our changes the page may be
   * older than. An older snapshot only makes more listings count as changed, so the next
   * page's snapshot is taken while this page is on its way, off the reading's critical path. */
  private request(
    q: TicketsQuery,
    snapshot: Promise<string> = currentSnapshot(this.sql),
  ): Promise<{ snapshot: string; reply: TixstockReply<TixstockListing[]> }> {
    snapshot.catch(() => {});
    const p = (async () => {
      const taken = await snapshot;
      return { snapshot: taken, reply: await this.fetch(q) };
    })();
    p.catch(() => {}); // awaited by pages(); a rejection while the page before is written is not unhandled
    return p;
  }

  /** Pages are read one after the other and written by up to WRITERS transactions at once
   * (page N+1 is asked for while page N is written): no transaction waits for Tixstock, and the
   * run takes about as long as the reading alone. A failure lets the writes in flight end
   * (each page is all or nothing), then fails the run. */
  async pages(): Promise<void> {
    this.startSnapshot = await currentSnapshot(this.sql);
    const cap = this.opts.pageCap ?? 2000;
    const writing = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    const write = (w: Promise<void>) => {
      const tracked: Promise<void> = w
        .catch((error: unknown) => void (failure ??= { error }))
        .finally(() => writing.delete(tracked));
      writing.add(tracked);
    };
    let nextSnapshot: Promise<string> | undefined;
    try {
      let next = this.request({ page: 1, perPage: PER_PAGE });
      nextSnapshot = currentSnapshot(this.sql);
      for (let page = 1; !failure; page++) {
        const { snapshot, reply } = await next;
        const more = Boolean(reply.links?.next) && reply.data.length >= PER_PAGE;
        if (more && page < cap) {
          next = this.request({ page: page + 1, perPage: PER_PAGE }, nextSnapshot);
          nextSnapshot = currentSnapshot(this.sql);
        }
        while (writing.size >= WRITERS) await Promise.race(writing);
        write(this.apply(reply.data, snapshot, 1));
        if (!more) break;
        if (page >= cap)
          throw new RunFailure(`stopped at the page cap (${cap} pages of ${PER_PAGE}); Tixstock still had a next page`);
      }
    } finally {
      nextSnapshot?.catch(() => {});
      await Promise.all(writing);
    }
    if (failure) throw failure.error;
  }

  /** The ids the pages returned: only ids, so that what no page returned can be found (a
   * Set of 10,000 ids is about half a megabyte; the listings themselves are never kept). */
  private readonly seen = new Set<string>();

  /** Published listings of ours that no page returned, unchanged since the run started: asked for one by one. */
  async missing(): Promise<void> {
    let after = '0';
    for (;;) {
      const ids = await publishedIdsUnchangedSince(this.sql, this.startSnapshot, after, 1000);
      if (ids.length === 0) return;
      after = ids[ids.length - 1]!;
      for (const id of ids.filter((i) => !this.seen.has(i))) {
        const { snapshot, reply } = await this.request({ page: 1, perPage: PER_PAGE, listingId: id });
        const found = reply.data.filter((l) => idOf(l) === id);
        if (found.length) await this.apply(found, snapshot, 0);
        else {
          const [ours] = await listingsToCompare(this.sql, [id], snapshot);
          if (ours && ours.status === 'published') await this.gone(ours, snapshot);
        }
      }
    }
  }

  private async gone(ours: ComparedListing, snapshot: string): Promise<void> {
    const difference: Difference = {
      listing_id: ours.id,
      field: 'listing',
      ours: { status: ours.status, quantity: ours.quantity },
      tixstock: null,
      action: 'reported',
      note: 'Tixstock does not return it, also when asked for it by id',
    };
    await this.write({ items: [], pages: 0, snapshot, gone: difference });
  }

  /** Compares one page (or one listing asked for by id) and writes its outcome in one transaction. */
  private apply(items: TixstockListing[], snapshot: string, pages: number): Promise<void> {
    return this.write({ items, pages, snapshot });
  }

  private async write(p: { items: TixstockListing[]; pages: number; snapshot: string; gone?: Difference }): Promise<void> {
    this.checkAborted();
    const withId = p.items
      .map((raw) => ({ raw, id: idOf(raw) }))
      .filter((x): x is { raw: TixstockListing; id: string } => x.id !== null);
    const differences: Difference[] = [];
    let imported = 0;
    await this.sql.begin(async (tx) => {
      // Not waiting for the WAL flush halves a page's time. A crash may lose the last pages'
      // commits, never partly and never out of order (later commits flush earlier ones): the run
      // is then failed as abandoned and the next one compares those listings again.
      const [, oursRows] = await Promise.all([
        tx`set local synchronous_commit = off`,
        listingsToCompare(
          tx,
          withId.map((x) => x.id),
          p.snapshot,
        ),
      ]);
      const ours = new Map(oursRows.map((o) => [o.id, o]));
      const plan = this.plan(withId, ours, differences);
      if (p.gone) {
        if (this.opts.repair) plan.tombstones.push({ id: p.gone.listing_id, differences: [p.gone] });
        else differences.push(p.gone);
      }
      // The events of imports, and of listings that moved to another event, may be new here.
      const events = [...plan.imports, ...plan.updates.filter((u) => u.differences.some((d) => d.field === 'event_id'))].map(
        (i) => i.event,
      );
      if (events.length) await addMissingEvents(tx, events);
      if (plan.imports.length) {
        const created = new Set(await importListings(tx, this.id, plan.imports));
        imported = created.size;
        for (const i of plan.imports) {
          differences.push({
            listing_id: i.id,
            field: 'listing',
            ours: null,
            tixstock: { quantity: i.fields.quantity, event_id: i.fields.eventId, broker_id: i.fields.brokerId },
            action: created.has(i.id) ? 'imported' : 'skipped',
            note: created.has(i.id) ? null : 'created here while the page was read',
          });
        }
      }
      const outcomes = await repairListings(tx, { reconciliationId: this.id, snapshot: p.snapshot, items: plan.updates });
      for (const t of plan.tombstones)
        outcomes.set(t.id, await tombstoneListing(tx, { id: t.id, reconciliationId: this.id, snapshot: p.snapshot }));
      for (const r of [...plan.updates, ...plan.tombstones]) {
        const outcome = outcomes.get(r.id) ?? 'not_found';
        const note =
          outcome === 'repaired'
            ? null
            : outcome === 'deleted_here'
              ? NOTE_TOMBSTONE
              : outcome === 'changed_here'
                ? NOTE_CHANGED
                : 'no longer here';
        differences.push(
          ...r.differences.map((d) => ({
            ...d,
            action: outcome === 'repaired' ? ('repaired' as const) : ('skipped' as const),
            note,
          })),
        );
      }
      const alive = await recordPage(tx, this.id, {
        pages: p.pages,
        listings: p.items.length,
        withoutId: p.items.length - withId.length,
        imported,
        differences,
      });
      if (!alive) throw new RunFailure('the run is no longer running (failed by another process: no heartbeat was seen)');
    });
    for (const x of withId) this.seen.add(x.id);
    const t = this.totals;
    t.pages += p.pages;
    t.listings += p.items.length;
    t.withoutId += p.items.length - withId.length;
    t.imported += imported;
    t.differences += differences.length;
    this.opts.onProgress?.({ ...t });
  }

  /** What to do with each listing of a page; what is only reported goes to `reported`. */
  private plan(items: { raw: TixstockListing; id: string }[], ours: Map<string, ComparedListing>, reported: Difference[]) {
    const imports: Planned[] = [];
    const updates: Planned[] = [];
    const tombstones: { id: string; differences: Difference[] }[] = [];
    const unreadable = (id: string, errors: string[]) =>
      reported.push({
        listing_id: id,
        field: 'resource',
        ours: null,
        tixstock: errors,
        action: 'reported',
        note: "Tixstock's listing could not be read",
      });
    for (const { raw, id } of items) {
      const o = ours.get(id);
      const view = viewOf(raw);
      if (!o) {
        if (view.status === 'deleted') continue; // deleted there, unknown here: nothing to do
        const read = readListing(raw);
        if (!read.ok) {
          unreadable(id, read.errors);
          continue;
        }
        const summary = { quantity: view.quantity, event_id: view.event_id, broker_id: view.broker_id };
        if (!isListingId(id))
          reported.push({
            listing_id: id,
            field: 'listing',
            ours: null,
            tixstock: summary,
            action: 'reported',
            note: NOTE_NOT_OURS,
          });
        else if (!this.opts.repair)
          reported.push({
            listing_id: id,
            field: 'listing',
            ours: null,
            tixstock: summary,
            action: 'reported',
            note: 'not here',
          });
        else
          imports.push({
            id,
            fields: listingFields(read.listing, this.opts.markupPercent),
            event: read.listing.event,
            differences: [],
          });
        continue;
      }
      const found = compareListing(o, view).map((d): Difference => ({ listing_id: id, ...d, action: 'reported' }));
      if (found.length === 0) continue;
      // Only a listing that differs is read in full (zod): a repair needs all of it, and a
      // resource that fails the schema is reported as such rather than half-compared.
      const read = readListing(raw);
      if (!read.ok) unreadable(id, read.errors);
      else if (o.changed_after) reported.push(...found.map((d) => ({ ...d, action: 'skipped' as const, note: NOTE_CHANGED })));
      else if (!this.opts.repair) reported.push(...found);
      else if (o.status === 'deleted') reported.push(...found.map((d) => ({ ...d, note: NOTE_TOMBSTONE })));
      else if (view.status === 'deleted') tombstones.push({ id, differences: found });
      else
        updates.push({
          id,
          fields: listingFields(read.listing, this.opts.markupPercent),
          event: read.listing.event,
          differences: found,
        });
    }
    return { imports, updates, tombstones };
  }
}

interface Planned {
  id: string;
  fields: ListingFields;
  event: EventResource;
  differences: Difference[];
}
