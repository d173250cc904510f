// Our order status and broker closures pushed to Tixstock by jobs (retried until accepted), hold
// expiry by the worker's sweep, the ledger's view of a ticket.hold that may echo our own hold,
// and the whole life of an order sold through us.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { startJobWorker, type JobWorker } from '../src/jobs/worker.js';
import { salesSweep } from '../src/sales/sweep.js';
import { syncJobHandlers } from '../src/sales/sync.js';
import { mailJobHandlers } from '../src/support/mail-jobs.js';
import { createApp } from '../src/app.js';
import { startSimulator } from '../src/tixstock/simulator.js';
import { resetDatabase, sendWebhook, testConfig, testSql, TOKEN, webhook } from './helpers.js';
import { callsOf, ledgerOf, quantityOf, salesApi, salesWorld, type SalesWorld } from './sales-helpers.js';

const customer = { id: 'C-7', first_name: 'Grace', last_name: 'Hopper', email_address: 'grace@example.org' };
let n = 0;
const nextOrderId = () => `S-${process.pid}-${++n}`;

async function until(what: string, check: () => Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sales: sync jobs, expiry, the life of an order', function () {
  this.timeout(60_000);
  let w: SalesWorld;
  let api: ReturnType<typeof salesApi>;
  let worker: JobWorker;
  before(async () => {
    await resetDatabase();
    w = await salesWorld({ TIXSTOCK_HOLD_MINUTES: '0.02' });
    api = salesApi(w.app);
    worker = startJobWorker({
      sql: testSql(),
      config: w.config,
      handlers: { ...mailJobHandlers, ...syncJobHandlers(w.tixstock) },
      periodic: [salesSweep(testSql(), w.config)],
      pollMs: 50,
      retryBaseMs: 50,
      maxRetryMs: 200,
    });
  });
  afterEach(() => w.sim.clearFaults());
  after(async () => {
    await worker.stop(1000);
    await w.close();
  });

  async function sell(quantity = 2) {
    const id = await w.listing(10);
    const h = (await api.post('/api/holds', { listing_id: id, quantity }).expect(201)).body;
    const orderId = nextOrderId();
    await api
      .post(`/api/holds/${h.id}/order`, {
        order_id: orderId,
        order_status: 'Pending Approval',
        currency: 'GBP',
        customer,
        quantity,
      })
      .expect(201);
    return { listingId: id, hold: h, orderId };
  }

  it("a hold neither released nor ordered expires when Tixstock's would: its tickets come back (the worker's sweep)", async () => {
    const id = await w.listing(6);
    const h = (await api.post('/api/holds', { listing_id: id, quantity: 4 }).expect(201)).body;
    assert.deepEqual(await quantityOf(id), { quantity: 2, ceiling: 6 });
    await until('the hold to expire', async () => (await api.get(`/api/holds/${h.id}`)).body.status === 'expired');
    assert.deepEqual(await quantityOf(id), { quantity: 6, ceiling: 6 });
    assert.deepEqual(
      (await ledgerOf(id)).slice(-2).map((r) => [r.reason, r.before, r.after]),
      [
        ['our.hold', 6, 2],
        ['our.hold.expired', 2, 6],
      ],
    );
    await api.post(`/api/holds/${h.id}/release`).expect(409);
    await api
      .post(`/api/holds/${h.id}/order`, { order_id: nextOrderId(), order_status: 'x', currency: 'GBP', customer, quantity: 1 })
      .expect(409);
  });

  it("PUT /api/orders/:id/status of an order sold through us reaches Tixstock's order/update, retried through faults; tixstock_sync shows it", async () => {
    const { orderId } = await sell();
    w.sim.fault({ call: 'order/update', kind: '503', times: 2 });
    const put = await api.put(`/api/orders/${orderId}/status`, { status: 'Approved' }).expect(200);
    assert.equal(put.body.order_status, 'Approved');
    assert.equal(put.body.tixstock_sync.status, 'pending');
    await until(
      'order/update accepted',
      async () => (await api.get(`/api/orders/${orderId}`)).body.tixstock_sync.status === 'done',
    );
    const order = w.sim.orders().find((o) => o.orderId === orderId)!;
    assert.equal(order.status, 'Approved');
    assert.equal(callsOf(w.sim, 'order/update').filter((c) => c.path.includes(orderId)).length, 3);
    const [job] = await testSql()<
      { attempts: number; last_error: string }[]
    >`select attempts, last_error from jobs where order_id = ${orderId}`;
    assert.equal(job!.attempts, 3);
    assert.match(job!.last_error, /unavailable|503/);
  });

  it('a status Tixstock keeps refusing ends failed with the last error, on the API and the support page', async () => {
    const { orderId } = await sell();
    w.sim.fault({ call: 'order/update', kind: '500' });
    await api.put(`/api/orders/${orderId}/status`, { status: 'Rejected' }).expect(200);
    await testSql()`update jobs set max_attempts = 2 where order_id = ${orderId}`; // not two days of retries
    await until('the job to fail', async () => (await api.get(`/api/orders/${orderId}`)).body.tixstock_sync.status === 'failed');
    const sync = (await api.get(`/api/orders/${orderId}`)).body.tixstock_sync;
    assert.ok(sync.last_error);
    const page = await (await import('supertest'))
      .default(w.app)
      .get(`/support/order?id=${orderId}`)
      .auth('support', 'test-support-password')
      .expect(200);
    assert.match(page.text, /id="tixstock-sync">failed \(last error: /);
  });

  it('orders not sold through us are not pushed (no job)', async () => {
    const orderId = nextOrderId();
    const res = await api.put(`/api/orders/${orderId}/status`, { status: 'Approved' }).expect(201);
    assert.equal(res.body.tixstock_sync, null);
    assert.equal((await testSql()`select count(*)::int as n from jobs where order_id = ${orderId}`)[0]!.n, 0);
  });

  it('POST /api/brokers/:id/close: closed here at once, at Tixstock by a job through a fault; unknown broker 404', async () => {
    const broker = (
      await api.post('/api/brokers', { username: `b-${process.pid}-${Date.now()}`, password: 'long-enough-password' }).expect(201)
    ).body;
    w.sim.fault({ call: 'broker/close', kind: '500', times: 1 });
    const res = await api.post(`/api/brokers/${broker.id}/close`).expect(200);
    assert.ok(res.body.closed_at);
    assert.equal(res.body.tixstock_sync.status, 'pending');
    const [row] = await testSql()<{ closed_at: Date | null }[]>`select closed_at from brokers where id = ${broker.id}`;
    assert.ok(row!.closed_at);
    await until('broker/close accepted', async () => w.sim.state.closedBrokers.includes(broker.id));
    await api.post('/api/brokers/no-such-broker/close').expect(404);
  });

  it("a ticket.hold of our hold's quantity right after it is applied (no guess) and named in the ledger as a possible echo", async () => {
    const id = await w.listing(10);
    const h = (await api.post('/api/holds', { listing_id: id, quantity: 2 }).expect(201)).body;
    await sendWebhook(w.app, webhook('ticket.hold', { external_id: id, hold_quantity: 2 })).expect(200);
    const ledger = (await api.get(`/api/listings/${id}/ledger`).expect(200)).body.items;
    const last = ledger.at(-1);
    assert.equal(last.reason, 'ticket.hold');
    assert.equal(last.after, 6);
    assert.equal(last.possible_echo_of_hold, h.id);
    assert.equal(ledger.at(-2).possible_echo_of_hold, null);
  });

  it('a simulator that also sends us ticket.hold for our own hold: counted twice, and the ledger says which hold it may echo', async () => {
    const server: Server = await new Promise((resolve) => {
      const s = (w.app as unknown as { listen: (p: number, h: string, cb: () => void) => Server }).listen(0, '127.0.0.1', () =>
        resolve(s),
      );
    });
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const echoing = await startSimulator({ token: TOKEN, serviceUrl: url, echoOwnHolds: true });
    try {
      const config = testConfig({ TIXSTOCK_API_URL: echoing.url, TIXSTOCK_API_RATE_PER_MINUTE: '100000' });
      const app = createApp({ sql: testSql(), config });
      const id = await w.listing(10);
      echoing.putListing({ id, quantity: 10 });
      const h = (await salesApi(app).post('/api/holds', { listing_id: id, quantity: 3 }).expect(201)).body;
      await until('the echo', async () => (await ledgerOf(id)).some((r) => r.reason === 'ticket.hold'));
      assert.deepEqual(await quantityOf(id), { quantity: 4, ceiling: 10 }, 'the double count is there, not hidden');
      const echo = (await api.get(`/api/listings/${id}/ledger`).expect(200)).body.items.find(
        (r: { reason: string }) => r.reason === 'ticket.hold',
      );
      assert.equal(echo.possible_echo_of_hold, h.id);
    } finally {
      await echoing.close();
      server.close();
    }
  });

  it("the whole life of an order: our sale, then Tixstock's order.update and a fulfilment PDF for it", async () => {
    const server: Server = await new Promise((resolve) => {
      const s = (w.app as unknown as { listen: (p: number, h: string, cb: () => void) => Server }).listen(0, '127.0.0.1', () =>
        resolve(s),
      );
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const { listingId, orderId } = await sell(2);
      await api.put(`/api/orders/${orderId}/status`, { status: 'Approved' }).expect(200);
      await until('order/update', async () => (await api.get(`/api/orders/${orderId}`)).body.tixstock_sync.status === 'done');
      const update = await w.sim.webhooks.orderUpdate(
        orderId,
        { status: 'Commissionable', shipping_tracking_id: 'TRACK-1' },
        url,
      );
      assert.equal(update.status, 200);
      assert.equal((update.body as { order_status: string }).order_status, 'Approved', 'we answer with our status');
      for (const seat of ['21', '22']) {
        const f = await w.sim.webhooks.fulfil(orderId, { listingId, seat, serviceUrl: url });
        assert.equal(f.status, 200);
        assert.equal((f.body as { success: boolean }).success, true, JSON.stringify(f.body));
      }
      const order = (await api.get(`/api/orders/${orderId}`).expect(200)).body;
      assert.equal(order.status, 'Commissionable');
      assert.equal(order.order_status, 'Approved');
      assert.equal(order.shipping_tracking_id, 'TRACK-1');
      assert.equal(order.tickets.length, 2);
      assert.equal(order.customer_email, 'grace@example.org');
      const pdf = await api.get(`/api/orders/${orderId}/tickets.pdf`).expect(200);
      assert.equal(pdf.headers['content-type'], 'application/pdf');
      assert.deepEqual(await quantityOf(listingId), { quantity: 8, ceiling: 8 });
    } finally {
      server.close();
    }
  });
});
