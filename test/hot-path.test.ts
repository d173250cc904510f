// Holds and releases go as one autocommit statement, pipelined on a pool of their own
// (db/transaction.ts autocommitWithDeadline): a deadline still never becomes a late write.
// Here the hot pool has ONE connection, so a second hold waits in its pipeline behind the first.
import assert from 'node:assert/strict';
import { createApp } from '../src/app.js';
import { connect, type Sql } from '../src/db/connect.js';
import {
  addListing,
  api,
  type App,
  databaseUrl,
  resetDatabase,
  sendWebhook,
  testConfig,
  testSql,
  webhook,
  withQuantity,
} from './helpers.js';

describe('holds and releases on their own pipelined pool', function () {
  this.timeout(60_000);
  let hot: Sql;
  let app: App;
  const DEADLINE_MS = 800;
  before(async () => {
    await resetDatabase();
    hot = connect(databaseUrl(), { max: 1, applicationName: 'hot-path-test' });
    app = createApp({ sql: testSql(), hot, config: testConfig({ WEBHOOK_DEADLINE_MS: String(DEADLINE_MS) }) });
  });
  after(() => hot.end({ timeout: 5 }));

  const quantityOf = async (id: string) => (await api(app).get(`/api/listings/${id}`).expect(200)).body.quantity as number;
  const holdsRecorded = async (ids: string[]) => {
    const [row] = await testSql()<{ n: number }[]>`
      select count(*)::int as n from listing_quantity_changes where listing_id = any(${ids}::bigint[]) and reason = 'ticket.hold'`;
    return row!.n;
  };

  it('a hold waiting for a lock past its deadline, and one in the pipeline behind it, are answered 503 and never applied', async () => {
    const locked = await addListing(app, withQuantity(10));
    const other = await addListing(app, withQuantity(10));
    const blocker = await testSql().reserve();
    try {
      await blocker`begin`;
      await blocker`select 1 from listings where id = ${locked} for update`;
      const started = Date.now();
      const first = sendWebhook(app, webhook('ticket.hold', { external_id: locked, hold_quantity: 1 }));
      await new Promise((r) => setTimeout(r, 100));
      const second = sendWebhook(app, webhook('ticket.hold', { external_id: other, hold_quantity: 1 }));
      const [a, b] = await Promise.all([first, second]);
      const took = Date.now() - started;
      assert.equal(a.status, 503, JSON.stringify(a.body));
      assert.equal(b.status, 503, JSON.stringify(b.body));
      assert.ok(took < DEADLINE_MS + 3000, `answered ${took} ms after the first byte`);
    } finally {
      await blocker`commit`;
      blocker.release();
    }
    // Nothing runs late once the lock is gone: both listings as they were, no ledger rows.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await quantityOf(locked), 10);
    assert.equal(await quantityOf(other), 10);
    assert.equal(await holdsRecorded([locked, other]), 0);
    const [row] = await testSql()<{ n: number }[]>`select count(*)::int as n from deliveries where type = 'ticket.hold'`;
    assert.equal(row!.n, 0, 'a 503 leaves no delivery row');
    // The pool is not wedged: the next hold goes through on the same connection.
    const next = await sendWebhook(app, webhook('ticket.hold', { external_id: other, hold_quantity: 2 }));
    assert.equal(next.status, 200);
    assert.equal(next.body.message, `2 held on listing ${other}; quantity 10 -> 8`);
  });

  it('a connection killed under a waiting hold: asked by its delivery id, answered 503, not applied; the pool recovers', async () => {
    const id = await addListing(app, withQuantity(5));
    const blocker = await testSql().reserve();
    let answer: Awaited<ReturnType<typeof sendWebhook>>;
    try {
      await blocker`begin`;
      await blocker`select 1 from listings where id = ${id} for update`;
      const waiting = sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1 }));
      await new Promise((r) => setTimeout(r, 200));
      const killed = await testSql()<{ ok: boolean }[]>`
        select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'hot-path-test'`;
      assert.equal(killed.length, 1);
      answer = await waiting;
    } finally {
      await blocker`commit`;
      blocker.release();
    }
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(await quantityOf(id), 5);
    assert.equal(await holdsRecorded([id]), 0);
    const next = await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1 }));
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(await quantityOf(id), 4);
  });

  it('concurrent holds in one pipeline each apply once, in lock order, answered with their own change', async () => {
    const id = await addListing(app, withQuantity(20));
    const replies = await Promise.all(
      Array.from({ length: 15 }, () => sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1 }))),
    );
    assert.deepEqual(
      replies.map((r) => r.status),
      replies.map(() => 200),
    );
    assert.equal(await quantityOf(id), 5);
    const ledger = await testSql()<{ before: number; after: number }[]>`
      select before, after from listing_quantity_changes where listing_id = ${id} and reason = 'ticket.hold' order by id`;
    assert.deepEqual(
      ledger.map((r) => [r.before, r.after]),
      Array.from({ length: 15 }, (_, i) => [20 - i, 19 - i]),
    );
    const answered = replies.map((r) => String(r.body.message).replace(/^.*quantity /, '')).sort();
    assert.deepEqual(answered, ledger.map((r) => `${r.before} -> ${r.after}`).sort());
  });
});
