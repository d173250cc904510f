// Reconciliation against the Tixstock simulator over real HTTP, on the real database: every
// kind of difference reported and repaired, paging, imports, what lands during a run, 429s,
// outages, the API, the CLI and one run at a time across processes.
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { createApp } from '../src/app.js';
import { startRun, type RunOptions } from '../src/reconcile/run.js';
import { getRun } from '../src/reconcile/runs.js';
import { RECONCILE_JOB, reconcileJobs, schedulePeriodicReconciliation } from '../src/reconcile/schedule.js';
import { createTixstockClient } from '../src/tixstock/client.js';
import type { TixstockClient } from '../src/tixstock/contract.js';
import { listingResource } from '../src/tixstock/sim-state.js';
import { startSimulator, type Simulator } from '../src/tixstock/simulator.js';
import { api, databaseUrl, resetDatabase, sendWebhook, testConfig, testSql, TOKEN, webhook, type App } from './helpers.js';

const exec = promisify(execFile);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
let sql: ReturnType<typeof testSql>;

/** Short pauses so that 429s and outages take milliseconds here. */
const FAST: Omit<RunOptions, 'repair' | 'requestedBy'> = {
  markupPercent: '0',
  rateLimitPauseMs: 50,
  rateLimitTries: 5,
  retryDelayMs: 20,
  unavailableTries: 3,
  heartbeatMs: 200,
};

let sim: Simulator;
let client: TixstockClient;
let app: App;
let marker = 0;

async function reconcile(repair: boolean, opts: Partial<RunOptions> = {}) {
  const { id, finished } = await startRun(sql, client, { ...FAST, repair, requestedBy: 'api', ...opts });
  const outcome = await finished;
  const run = (await getRun(sql, id))!;
  assert.equal(run.status, outcome.status);
  return run;
}

/** A listing here (ticket.add) and at the simulator with the same id and resource. */
async function both(quantity: number, overrides: Record<string, unknown> = {}): Promise<string> {
  const resource: Record<string, unknown> = {
    ...listingResource(quantity, overrides),
    test_marker: `${process.pid}-${++marker}`,
  };
  const res = await sendWebhook(app, webhook('ticket.add', resource));
  assert.equal(res.body.success, true, JSON.stringify(res.body));
  const id = res.body.listing_id as string;
  const { id: _none, ...rest } = resource;
  sim.putListing({
    id,
    quantity,
    brokerId: String(resource.broker_id),
    eventId: (resource.event as { id: string }).id,
    resource: rest,
  });
  return id;
}

/** Changes a listing's resource at the simulator only (a webhook Tixstock sent that we lost). */
function atTixstock(id: string, change: (r: Record<string, unknown>) => void, quantity?: number) {
  const l = sim.listing(id)!;
  const resource = structuredClone(l.resource);
  change(resource);
  sim.putListing({ key: l.key, id, quantity: quantity ?? l.quantity, resource });
}

const ours = async (id: string) =>
  (
    await sql<
      {
        status: string;
        quantity: number;
        quantity_ceiling: number;
        broker_id: string;
        event_id: string;
        tixstock_display_price: unknown;
        proceed_price: unknown;
        face_value: unknown;
        seat_details: Record<string, unknown>;
        first_seat: string;
      }[]
    >`
    select status, quantity, quantity_ceiling, broker_id, event_id, tixstock_display_price, proceed_price, face_value, seat_details, first_seat
      from listings where id = ${id}`
  )[0];
const allOurs = () => sql`select * from listings order by id`;
const ledgerCount = async () => (await sql<{ n: number }[]>`select count(*)::int as n from listing_quantity_changes`)[0]!.n;
const ticketsGets = (from = 0) => sim.calls.slice(from).filter((c) => c.call === 'tickets/get');

describe('reconciliation with tickets/get (simulator over HTTP)', function () {
  this.timeout(120_000);

  before(async () => {
    sql = testSql();
    sim = await startSimulator({ token: TOKEN });
    const config = testConfig({
      TIXSTOCK_API_URL: sim.url,
      TIXSTOCK_API_TIMEOUT_MS: '3000',
      TIXSTOCK_API_RATE_PER_MINUTE: '100000',
    });
    client = createTixstockClient(config, { pauseMs: 50, refuseProduction: true });
    app = createApp({ sql, config, tixstock: client });
  });
  after(() => sim.close());
  beforeEach(async () => {
    await resetDatabase();
    sim.reset();
  });

  it('pages through 133 listings (3 without id) 50 at a time, stopping at the short page; nothing differs', async () => {
    for (let i = 0; i < 130; i++) await both(i % 7);
    for (let i = 0; i < 3; i++) sim.putListing({ id: null, quantity: 4, resource: listingResource(4) });
    const run = await reconcile(true);
    assert.equal(run.status, 'done', run.error ?? '');
    assert.deepEqual([run.pages, run.listings_checked, run.without_id, run.imported, run.difference_count], [3, 133, 3, 0, 0]);
    const gets = ticketsGets();
    assert.equal(gets.length, 3);
    for (const [i, c] of gets.entries()) assert.match(c.path, new RegExp(`per_page=50&page=${i + 1}$`));
    assert.equal((await sql`select count(*)::int as n from listings`)[0]!.n, 130, 'id-less listings are not imported');
  });

  it('stops when links.next is null on a full page (100 listings: 2 calls, not 3)', async () => {
    for (let i = 0; i < 100; i++) await both(3);
    const run = await reconcile(false);
    assert.equal(run.status, 'done');
    assert.equal(ticketsGets().length, 2);
    assert.equal(run.listings_checked, 100);
  });

  /** One listing per kind of difference; returns their ids by kind. */
  async function differences() {
    const ids: Record<string, string> = {};
    for (const kind of [
      'same',
      'quantity',
      'deleted_there',
      'display_price',
      'proceed_price',
      'face_value',
      'seat_details',
      'broker_id',
      'event_id',
      'gone',
    ]) {
      ids[kind] = await both(10);
    }
    atTixstock(ids.quantity!, () => {}, 6);
    atTixstock(ids.deleted_there!, (r) => (r.published = 'false'));
    atTixstock(ids.display_price!, (r) => (r.display_price = { currency: 'GBP', amount: '61.5' }));
    atTixstock(ids.proceed_price!, (r) => (r.proceed_price = { currency: 'GBP', amount: '50.00' }));
    atTixstock(ids.face_value!, (r) => (r.face_value = { currency: 'GBP', amount: '40' }));
    atTixstock(ids.seat_details!, (r) => (r.seat_details = { category: 'Stalls', section: 'A', row: 7, first_seat: 3 }));
    const b = sim.listing(ids.broker_id!)!;
    sim.putListing({ key: b.key, id: b.id, quantity: b.quantity, brokerId: '6600' });
    atTixstock(ids.event_id!, (r) => (r.event = { ...(r.event as object), id: '7009999', name: 'Moved Night' }));
    sim.state.listings.delete(sim.listing(ids.gone!)!.key);
    // At Tixstock only: a listing of an earlier install of ours (its event too).
    const [seq] = await sql<{ last_value: string }[]>`select last_value::text from listing_id_seq`;
    ids.not_here = String(BigInt(seq!.last_value) + 500n);
    sim.putListing({
      id: ids.not_here,
      quantity: 5,
      eventId: '7007777',
      resource: listingResource(5, {
        event: { id: '7007777', name: 'Imported Night', datetime: '2027-05-01T20:00:00+0000', status: 'Active' },
      }),
    });
    return ids;
  }

  it('reports every kind of difference and changes nothing', async () => {
    const ids = await differences();
    const deletedHere = await both(4);
    await sendWebhook(app, webhook('ticket.delete', { listing_id: deletedHere })).expect(200);
    const unreadable = await both(4);
    atTixstock(unreadable, (r) => (r.display_price = { currency: 'GBP', amount: 'lots' }));
    const before = await allOurs();
    const ledger = await ledgerCount();

    const run = await reconcile(false);
    assert.equal(run.status, 'done', run.error ?? '');
    const found = run.differences.map((d) => [d.listing_id, d.field, d.action]);
    assert.deepEqual(
      new Set(found.map((f) => f.join(' '))),
      new Set(
        [
          [ids.quantity, 'quantity', 'reported'],
          [ids.deleted_there, 'status', 'reported'],
          [ids.display_price, 'display_price', 'reported'],
          [ids.proceed_price, 'proceed_price', 'reported'],
          [ids.face_value, 'face_value', 'reported'],
          [ids.seat_details, 'seat_details', 'reported'],
          [ids.broker_id, 'broker_id', 'reported'],
          [ids.event_id, 'event_id', 'reported'],
          [ids.gone, 'listing', 'reported'],
          [ids.not_here, 'listing', 'reported'],
          [deletedHere, 'status', 'reported'],
          [unreadable, 'resource', 'reported'],
        ].map((f) => f.join(' ')),
      ),
    );
    const by = (id: string, field: string) => run.differences.find((d) => d.listing_id === id && d.field === field)!;
    assert.deepEqual([by(ids.quantity!, 'quantity').ours, by(ids.quantity!, 'quantity').tixstock], [10, 6]);
    assert.deepEqual(by(ids.display_price!, 'display_price').tixstock, { currency: 'GBP', amount: '61.50' });
    assert.deepEqual(by(ids.seat_details!, 'seat_details').tixstock, {
      category: 'Stalls',
      section: 'A',
      row: '7',
      first_seat: '3',
    });
    assert.deepEqual([by(ids.event_id!, 'event_id').ours, by(ids.event_id!, 'event_id').tixstock], ['7004512', '7009999']);
    assert.deepEqual(by(ids.gone!, 'listing').tixstock, null);
    assert.match(String(by(unreadable, 'resource').tixstock), /display_price/);
    assert.equal(run.difference_count, 12);
    assert.deepEqual(await allOurs(), before, 'a report changes no listing');
    assert.equal(await ledgerCount(), ledger);
    // The one that no page returned was asked for by id before it was called gone.
    assert.ok(ticketsGets().some((c) => c.path.includes(`listing_id=${ids.gone}`)));
  });

  it('repairs every kind of difference as Tixstock has it, imports what is missing here; a second repair run finds nothing', async () => {
    const ids = await differences();
    const run = await reconcile(true);
    assert.equal(run.status, 'done', run.error ?? '');
    assert.equal(run.imported, 1);
    for (const d of run.differences) {
      assert.equal(d.action, d.listing_id === ids.not_here ? 'imported' : 'repaired', JSON.stringify(d));
    }
    assert.equal(run.difference_count, 10);

    const q = (await ours(ids.quantity!))!;
    assert.deepEqual([q.quantity, q.quantity_ceiling], [6, 6]);
    assert.equal((await ours(ids.deleted_there!))!.status, 'deleted');
    assert.deepEqual((await ours(ids.display_price!))!.tixstock_display_price, { currency: 'GBP', amount: '61.50' });
    assert.deepEqual((await ours(ids.proceed_price!))!.proceed_price, { currency: 'GBP', amount: '50.00' });
    assert.deepEqual((await ours(ids.face_value!))!.face_value, { currency: 'GBP', amount: '40.00' });
    assert.equal((await ours(ids.seat_details!))!.first_seat, '3');
    assert.equal((await ours(ids.broker_id!))!.broker_id, '6600');
    assert.equal((await ours(ids.event_id!))!.event_id, '7009999');
    const gone = (await ours(ids.gone!))!;
    assert.deepEqual([gone.status, gone.quantity], ['deleted', 0]);
    const imported = (await ours(ids.not_here!))!;
    assert.deepEqual([imported.status, imported.quantity, imported.event_id], ['published', 5, '7007777']);
    assert.equal((await sql`select name from events where id = '7007777'`)[0]!.name, 'Imported Night');
    assert.equal((await sql`select name from events where id = '7009999'`)[0]!.name, 'Moved Night', 'the event it moved to');

    // Each quantity change is a ledger row of the run: 10 -> 6, the two tombstones, the import.
    const ledger = await sql<{ listing_id: string; before: number | null; after: number }[]>`
      select listing_id::text, before, after from listing_quantity_changes
       where reason = 'reconcile' and reconciliation_id = ${run.id} order by listing_id`;
    assert.deepEqual(
      ledger.map((r) => [r.listing_id, r.before, r.after]),
      [
        [ids.quantity, 10, 6],
        [ids.deleted_there, 10, 0],
        [ids.gone, 10, 0],
        [ids.not_here, null, 5],
      ].sort((a, b) => Number(a[0]) - Number(b[0])),
    );
    const res = await api(app).get(`/api/listings/${ids.quantity}/ledger`).expect(200);
    assert.equal(res.body.items.at(-1).reconciliation_id, run.id);

    const again = await reconcile(true);
    assert.equal(again.status, 'done');
    assert.deepEqual(again.differences, []);
  });

  it('never revives a tombstone: a listing deleted here but published at Tixstock is reported, also by a repair', async () => {
    const id = await both(4);
    await sendWebhook(app, webhook('ticket.delete', { listing_id: id })).expect(200);
    const run = await reconcile(true);
    assert.deepEqual(
      run.differences.map((d) => [d.field, d.ours, d.tixstock, d.action]),
      [['status', 'deleted', 'published', 'reported']],
    );
    assert.match(run.differences[0]!.note!, /never revived/);
    assert.equal((await ours(id))!.status, 'deleted');
  });

  it('a webhook and a sale that land while a page is on its way win over that page; the run says so', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await both(10));
    const [held, sold, other] = [ids[3]!, ids[7]!, ids[55]!];
    atTixstock(other, () => {}, 9); // a real difference on page 2, repaired
    // Page 1 is built, then answered 800 ms later: meanwhile a hold and a sale arrive here.
    sim.fault({ call: 'tickets/get', kind: 'slow', ms: 800, times: 1 });
    const running = startRun(sql, client, { ...FAST, repair: true, requestedBy: 'api' });
    const { id } = await running;
    while (ticketsGets().length === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    atTixstock(held, () => {}, 8);
    assert.equal((await sendWebhook(app, webhook('ticket.hold', { external_id: held, hold_quantity: 2 }))).body.success, true);
    // Our own sale: a basket hold through the sales API (here, then at the simulator).
    const hold = await api(app).post('/api/holds').send({ listing_id: sold, quantity: 3 });
    assert.equal(hold.status, 201, JSON.stringify(hold.body));
    assert.equal(sim.listing(sold)!.quantity, 7);
    await (await running).finished;
    const run = (await getRun(sql, id))!;
    assert.equal(run.status, 'done', run.error ?? '');
    assert.equal((await ours(held))!.quantity, 8, 'the hold stays');
    assert.equal((await ours(sold))!.quantity, 7, 'the sale stays');
    assert.equal((await ours(other))!.quantity, 9);
    const skipped = run.differences.filter((d) => d.action === 'skipped');
    assert.deepEqual(new Set(skipped.map((d) => d.listing_id)), new Set([held, sold]));
    for (const d of skipped) assert.match(d.note!, /changed here after the page was read/);
    assert.deepEqual(
      run.differences.filter((d) => d.action === 'repaired').map((d) => d.listing_id),
      [other],
    );
    // The next run compares them again and finds them equal.
    assert.deepEqual((await reconcile(true)).differences, []);
  });

  it('a hold of ours whose answer from Tixstock is unknown (pending) is not repaired away', async () => {
    const id = await both(10);
    sim.fault({ call: 'hold', kind: 'no_answer', times: 1 });
    const hold = await api(app).post('/api/holds').send({ listing_id: id, quantity: 2 });
    assert.equal(hold.status, 503, JSON.stringify(hold.body));
    assert.equal((await ours(id))!.quantity, 8, 'reserved here until the outcome is known');
    const run = await reconcile(true);
    assert.deepEqual(
      run.differences.map((d) => [d.field, d.ours, d.tixstock, d.action]),
      [['quantity', 8, 10, 'skipped']],
    );
    assert.equal((await ours(id))!.quantity, 8);
    // An order/add whose answer was lost keeps its busy mark for good: once its time is over,
    // Tixstock's quantity is the one to trust.
    await sql`update holds set status = 'active', busy = 'order', busy_until = now() - interval '1 second' where listing_id = ${id}`;
    const later = await reconcile(true);
    assert.deepEqual(
      later.differences.map((d) => [d.field, d.ours, d.tixstock, d.action]),
      [['quantity', 8, 10, 'repaired']],
    );
  });

  it('a 429 in the middle pauses, then the run finishes', async () => {
    for (let i = 0; i < 130; i++) await both(2);
    atTixstock((await sql<{ id: string }[]>`select id::text from listings order by id offset 120 limit 1`)[0]!.id, () => {}, 1);
    sim.fault({ call: 'tickets/get', kind: 'slow', ms: 0, times: 1 }); // page 1 as usual
    sim.fault({ call: 'tickets/get', kind: '429', times: 2 }); // page 2, twice
    const run = await reconcile(true);
    assert.equal(run.status, 'done', run.error ?? '');
    assert.equal(run.listings_checked, 130);
    assert.deepEqual(
      ticketsGets().map((c) => c.status),
      [200, 429, 429, 200, 200],
    );
    assert.deepEqual(
      run.differences.map((d) => d.action),
      ['repaired'],
    );
  });

  it('429 for too long: the run fails with the reason', async () => {
    await both(2);
    sim.fault({ call: 'tickets/get', kind: '429' });
    const run = await reconcile(true);
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /tickets\/get page 1: Tixstock rate_limited.*5 tries/);
  });

  it('Tixstock down: the run fails with the reason and changes nothing', async () => {
    const ids = await differences();
    const before = await allOurs();
    const ledger = await ledgerCount();
    sim.fault({ call: '*', kind: '503' });
    const run = await reconcile(true);
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /tickets\/get page 1: Tixstock unavailable \(HTTP 503.*3 tries/);
    assert.equal(ticketsGets().length, 3);
    assert.deepEqual(await allOurs(), before);
    assert.equal(await ledgerCount(), ledger);
    assert.ok(ids.quantity);
  });

  it('a failure on page 2 keeps page 1 repaired and changes nothing after it', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await both(5));
    atTixstock(ids[1]!, () => {}, 1);
    atTixstock(ids[51]!, () => {}, 1);
    sim.fault({ call: 'tickets/get', kind: 'slow', ms: 0, times: 1 });
    sim.fault({ call: 'tickets/get', kind: '500' });
    const run = await reconcile(true);
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /page 2/);
    assert.equal(run.pages, 1);
    assert.equal((await ours(ids[1]!))!.quantity, 1);
    assert.equal((await ours(ids[51]!))!.quantity, 5);
  });

  it('a wrong token fails the run at once (401 is configuration, not retried)', async () => {
    await both(2);
    const wrong = createTixstockClient(testConfig({ TIXSTOCK_API_URL: sim.url }), { token: 'not-the-token' });
    const { id, finished } = await startRun(sql, wrong, { ...FAST, repair: true, requestedBy: 'api' });
    await finished;
    const run = (await getRun(sql, id))!;
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /config \(HTTP 401/);
    assert.equal(ticketsGets().length, 1);
  });

  it('paces its calls below the rate limit it is given', async () => {
    for (let i = 0; i < 110; i++) await both(1);
    const run = await reconcile(false, { callsPerMinute: 120 }); // at most one call per 500 ms
    assert.equal(run.status, 'done');
    const at = ticketsGets().map((c) => c.at);
    assert.equal(at.length, 3);
    for (let i = 1; i < at.length; i++)
      assert.ok(at[i]! - at[i - 1]! >= 480, `call ${i} came ${at[i]! - at[i - 1]!} ms after the one before`);
  });

  it('stops at the page cap: failed, with what it read', async () => {
    for (let i = 0; i < 130; i++) await both(2);
    const run = await reconcile(false, { pageCap: 2 });
    assert.equal(run.status, 'failed');
    assert.match(run.error!, /page cap \(2 pages of 50\)/);
    assert.equal(run.pages, 2);
  });

  it('a run failed as stale by another process writes no more pages', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await both(5));
    atTixstock(ids[0]!, () => {}, 1);
    sim.fault({ call: 'tickets/get', kind: 'slow', ms: 600, times: 1 });
    const { id, finished } = await startRun(sql, client, { ...FAST, repair: true, requestedBy: 'api', heartbeatMs: 60_000 });
    while (ticketsGets().length === 0) await new Promise((r) => setTimeout(r, 10));
    await sql`update reconciliations set status = 'failed', error = 'abandoned (test)', finished_at = now() where id = ${id}`;
    const outcome = await finished;
    assert.equal(outcome.status, 'failed');
    assert.match(outcome.error!, /no longer running/);
    assert.equal((await ours(ids[0]!))!.quantity, 5, 'its page was rolled back');
    assert.equal((await getRun(sql, id))!.error, 'abandoned (test)');
  });

  it('an import moves our id sequence past the imported ids: a later ticket.add does not collide', async () => {
    const [seq] = await sql<{ last_value: string }[]>`select last_value::text from listing_id_seq`;
    const first = BigInt(seq!.last_value) + 1n;
    for (let i = 0n; i < 60n; i++) sim.putListing({ id: String(first + i), quantity: 3, resource: listingResource(3) });
    const report = await reconcile(false);
    assert.equal(report.differences.filter((d) => d.field === 'listing' && d.note === 'not here').length, 60);
    assert.equal((await sql`select count(*)::int as n from listings`)[0]!.n, 0);
    const run = await reconcile(true);
    assert.equal(run.imported, 60);
    assert.equal((await sql`select count(*)::int as n from listings`)[0]!.n, 60);
    const added = await both(2);
    assert.ok(BigInt(added) > first + 59n, `${added} is past the imported ids`);
    assert.deepEqual((await reconcile(true)).differences, []);
  });

  describe('the API, the support page, the schedule', () => {
    it('POST /api/reconciliations starts a run (202), GET shows it, a second POST while it runs is 409', async () => {
      for (let i = 0; i < 3; i++) await both(2);
      atTixstock((await sql<{ id: string }[]>`select id::text from listings order by id limit 1`)[0]!.id, () => {}, 1);
      sim.fault({ call: 'tickets/get', kind: 'slow', ms: 500, times: 1 });
      const started = await api(app).post('/api/reconciliations').send({ repair: false }).expect(202);
      assert.equal(started.body.status, 'running');
      assert.equal(started.body.repair, false);
      assert.deepEqual(started.body.differences, []);
      const busy = await api(app).post('/api/reconciliations').send({ repair: true }).expect(409);
      assert.match(busy.body.message, /is running; one run at a time/);
      let run = started.body;
      while (run.status === 'running') {
        await new Promise((r) => setTimeout(r, 50));
        run = (await api(app).get(`/api/reconciliations/${started.body.id}`).expect(200)).body;
      }
      assert.equal(run.status, 'done');
      for (const k of ['id', 'status', 'repair', 'started_at', 'finished_at', 'listings_checked', 'imported', 'differences'])
        assert.ok(k in run, k);
      assert.deepEqual(
        run.differences.map((d: { field: string; action: string }) => [d.field, d.action]),
        [['quantity', 'reported']],
      );
      const list = await api(app).get('/api/reconciliations').expect(200);
      assert.deepEqual(
        list.body.items.map((r: { id: string }) => r.id),
        [started.body.id],
      );
      assert.equal(list.body.next, null);

      const page = await request(app).get('/support').auth('support', 'test-support-password').expect(200);
      assert.match(page.text, /Last reconciliation with Tixstock/);
      assert.match(page.text, /<td>quantity<\/td><td class="mono">2<\/td>\s*<td class="mono">1<\/td><td>reported<\/td>/);
    });

    it('refuses bad input and unknown runs', async () => {
      const bad = await api(app).post('/api/reconciliations').send({ repair: 'yes' }).expect(400);
      assert.match(bad.body.errors[0], /body\.repair/);
      await api(app).get('/api/reconciliations/123456').expect(404);
      await api(app).get('/api/reconciliations/abc').expect(404);
      await request(app).post('/api/reconciliations').send({}).expect(401);
    });

    it('a run whose process died (no heartbeat) is failed by the next one', async () => {
      const [dead] = await sql<{ id: string }[]>`
        insert into reconciliations (repair, requested_by, heartbeat_at) values (true, 'cli', now() - interval '10 minutes') returning id::text`;
      const run = await reconcile(false);
      assert.equal(run.status, 'done');
      const old = (await getRun(sql, dead!.id))!;
      assert.equal(old.status, 'failed');
      assert.match(old.error!, /abandoned: no progress since/);
    });

    it('the periodic job runs a reconciliation and queues the next one an interval later, one job at a time', async () => {
      const config = testConfig({ TIXSTOCK_API_URL: sim.url, RECONCILE_INTERVAL: '2h', RECONCILE_REPAIR: 'true' });
      await Promise.all([schedulePeriodicReconciliation(sql, config), schedulePeriodicReconciliation(sql, config)]);
      const jobs = await sql<{ id: string; run_at: Date }[]>`select id::text, run_at from jobs where kind = ${RECONCILE_JOB}`;
      assert.equal(jobs.length, 1);
      assert.ok(jobs[0]!.run_at.getTime() > Date.now() + 119 * 60_000);
      const id = await both(3);
      atTixstock(id, () => {}, 2);
      await sql`update jobs set status = 'done' where kind = ${RECONCILE_JOB}`;
      const handler = reconcileJobs(client)[RECONCILE_JOB]!;
      const record = await handler(
        { id: '0', kind: RECONCILE_JOB, payload: {}, attempts: 1, max_attempts: 8, order_id: null },
        { sql, config },
      );
      await sql.begin((tx) => record!(tx));
      const [run] = await sql<
        { requested_by: string; repair: boolean; status: string }[]
      >`select requested_by, repair, status from reconciliations`;
      assert.deepEqual(run, { requested_by: 'schedule', repair: true, status: 'done' });
      assert.equal((await ours(id))!.quantity, 2);
      assert.equal(
        (await sql`select count(*)::int as n from jobs where kind = ${RECONCILE_JOB} and status = 'pending'`)[0]!.n,
        1,
      );
    });
  });

  describe('the CLI (npm run support -- reconcile)', () => {
    const cli = (args: string[], children?: ChildProcess[]) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: databaseUrl(),
        TIXSTOCK_API_URL: sim.url,
        TIXSTOCK_BEARER_TOKEN: TOKEN,
        LOG_LEVEL: 'silent',
      };
      const p = exec(process.execPath, ['--import', 'tsx', 'src/support/cli.ts', 'reconcile', ...args], { cwd: ROOT, env });
      children?.push(p.child);
      return p.then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    };

    it('prints progress; exit 0 when nothing differed, 1 when something did (and --repair repairs it)', async () => {
      for (let i = 0; i < 55; i++) await both(2);
      const clean = await cli([]);
      assert.equal(clean.code, 0, clean.stderr);
      assert.match(clean.stdout, /\n1 page\(s\) read: (5|50) listing\(s\) checked.*\n2 page\(s\) read: 55 listing\(s\) checked/);
      assert.match(clean.stdout, /done: 2 page\(s\), 55 listing\(s\) checked, 0 without id, 0 difference\(s\)/);
      const id = (await sql<{ id: string }[]>`select id::text from listings order by id limit 1`)[0]!.id;
      atTixstock(id, () => {}, 1);
      const differs = await cli(['--repair']);
      assert.equal(differs.code, 1, differs.stderr);
      assert.match(differs.stdout, new RegExp(`${id}  quantity  ours 2  tixstock 1  repaired`));
      assert.equal((await ours(id))!.quantity, 1);
      const bad = await cli(['--repair', '--report']);
      assert.equal(bad.code, 2);
    });

    it('two processes asked to run at once: one runs, the other says a run is in progress (exit 3)', async () => {
      for (let i = 0; i < 5; i++) await both(2);
      sim.fault({ call: 'tickets/get', kind: 'slow', ms: 3000, times: 1 });
      const [a, b] = await Promise.all([cli(['--repair']), cli(['--repair'])]);
      const codes = [a.code, b.code].sort();
      assert.deepEqual(codes, [0, 3], `${a.stdout}${a.stderr}\n${b.stdout}${b.stderr}`);
      assert.match((a.code === 3 ? a : b).stderr, /is running; one run at a time/);
      assert.equal((await sql`select count(*)::int as n from reconciliations`)[0]!.n, 1);
      assert.equal(ticketsGets().length, 1);
    });
  });
});
