// Back-pressure: a process works on WEBHOOK_CONCURRENCY webhooks at once and lets at most
// WEBHOOK_BACKLOG more wait; beyond that it answers 503 + Retry-After at once instead of
// queueing without end. Those it took are applied once they can be.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import request from 'supertest';
import { createApp } from '../src/app.js';
import { WebhookGate } from '../src/webhooks/receiver.js';
import { addListing, type App, resetDatabase, testConfig, testSql, webhook, withQuantity } from './helpers.js';
import { postWebhook } from './server-process.js';

describe('back-pressure and shutdown', () => {
  let app: App;
  let server: Server;
  let url: string;
  before(async () => {
    await resetDatabase();
    app = createApp({ sql: testSql(), config: testConfig({ WEBHOOK_CONCURRENCY: '1', WEBHOOK_BACKLOG: '2' }) });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  it('answers 503 with Retry-After beyond concurrency + backlog, and applies what it took', async () => {
    const id = await addListing(app, withQuantity(50));
    // Hold the listing's row lock so the webhooks that get in have to wait.
    let releaseLock!: () => void;
    const lockTaken = new Promise<void>((taken) => {
      void testSql().begin(async (tx) => {
        await tx`select 1 from listings where id = ${id} for update`;
        taken();
        await new Promise<void>((r) => (releaseLock = r));
      });
    });
    await lockTaken;
    let lockReleased = false;
    const answered: { status: number; message: string; retryAfter: string | null; lockReleased: boolean }[] = [];
    const replies = Array.from({ length: 10 }, () =>
      postWebhook(url, webhook('ticket.hold', { external_id: id, hold_quantity: 1 })).then((r) => {
        answered.push({ status: r.status, message: String(r.body.message), retryAfter: r.retryAfter, lockReleased });
        return r;
      }),
    );
    // The refused ones are answered while the lock is still held: at once, not after waiting.
    for (let i = 0; i < 100 && answered.length < 7; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200)); // and no more than those
    assert.equal(answered.length, 7, 'all but 1 working + 2 waiting are answered while the lock is held');
    for (const r of answered) {
      assert.equal(r.status, 503);
      assert.equal(r.lockReleased, false);
      assert.match(String(r.retryAfter), /^\d+$/);
      assert.match(r.message, /too many webhooks in progress/);
    }
    lockReleased = true;
    releaseLock();
    const all = await Promise.all(replies);
    assert.equal(all.filter((r) => r.status === 200).length, 3);
    assert.equal((await request(app).get(`/api/listings/${id}`).set('Authorization', 'Bearer test-api-token')).body.quantity, 47);
  });

  it('a webhook whose deadline passes while it waits for a slot is answered 503 and never attempted', async () => {
    // Large lane, one at a time, deadlines counted from the first byte: A (8 MB, 2 s of allowance)
    // holds the lane, stuck on a row lock; B (4 MB, 1 s) arrives just after and runs out first.
    const config = testConfig({ WEBHOOK_DEADLINE_MS: '500' });
    const gate = new WebhookGate(config.WEBHOOK_CONCURRENCY, config.WEBHOOK_BACKLOG, 1);
    const waiting = createApp({ sql: testSql(), config, gate });
    const s: Server = await new Promise((resolve) => {
      const l = waiting.listen(0, '127.0.0.1', () => resolve(l));
    });
    const base = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    const MB = 1024 * 1024;
    await postWebhook(base, webhook('event.update', { id: 'E-WAIT-A', name: 'A' }));
    let releaseLock!: () => void;
    await new Promise<void>((taken) => {
      void testSql().begin(async (tx) => {
        await tx`select 1 from events where id = 'E-WAIT-A' for update`;
        taken();
        await new Promise<void>((r) => (releaseLock = r));
      });
    });
    const deliveries = async () => (await testSql()`select count(*)::int as n from deliveries`)[0]!.n;
    const before = await deliveries();
    const bodyA = webhook('event.update', { id: 'E-WAIT-A', name: 'A2', description: 'x'.repeat(8 * MB) });
    const bodyB = webhook('event.update', { id: 'E-WAIT-B', name: 'B', description: 'x'.repeat(4 * MB) });
    try {
      const a = postWebhook(base, bodyA);
      while (gate.largeQueue.pending === 0) await new Promise((r) => setTimeout(r, 5));
      const b = await postWebhook(base, bodyB);
      assert.equal(b.status, 503, b.text);
      assert.match(String(b.body.message), /waited for a processing slot past its deadline; nothing was attempted/);
      assert.ok(b.retryAfter);
      assert.equal((await a).status, 503, 'A missed its own deadline on the lock');
    } finally {
      releaseLock();
      s.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await deliveries(), before, 'neither was applied, then or later');
    assert.equal((await testSql()`select 1 from events where id = 'E-WAIT-B'`).length, 0);
  });

  it('a closing gate refuses new webhooks with 503, and /readyz reports the shutdown', async () => {
    const gate = new WebhookGate(1, 1);
    gate.closing = true;
    const closing = createApp({ sql: testSql(), config: testConfig(), gate, isShuttingDown: () => true });
    const res = await request(closing).post('/webhooks/tixstock').set('Content-Type', 'application/json').send('{}').expect(503);
    assert.match(res.body.message, /shutting down/);
    assert.ok(res.headers['retry-after']);
    await request(closing).get('/readyz').expect(503);
  });
});
