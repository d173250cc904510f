// POST/GET /api/holds, release and order, over real HTTP against the Tixstock simulator with its
// faults: every status code, nothing half-done, Idempotency-Key.
import assert from 'node:assert/strict';
import { createApp } from '../src/app.js';
import { expireDueHolds } from '../src/inventory/holds.js';
import { createTixstockClient } from '../src/tixstock/client.js';
import type { SimFaultKind } from '../src/tixstock/simulator.js';
import { resetDatabase, sendWebhook, testSql, webhook } from './helpers.js';
import { callsOf, ledgerOf, quantityOf, salesApi, salesWorld, type SalesWorld } from './sales-helpers.js';

const customer = { id: 'C-1', first_name: 'Ada', last_name: 'Lovelace', email_address: 'ada@example.org' };
const orderBody = (orderId: string, quantity: number) => ({
  order_id: orderId,
  order_status: 'Pending Approval',
  currency: 'GBP',
  customer,
  quantity,
});
let orderCount = 0;
const nextOrderId = () => `R-${process.pid}-${++orderCount}`;

describe('sales: holds, releases and orders', function () {
  this.timeout(60_000);
  let w: SalesWorld;
  let api: ReturnType<typeof salesApi>;
  before(async () => {
    await resetDatabase();
    w = await salesWorld();
    api = salesApi(w.app);
  });
  afterEach(() => w.sim.clearFaults());
  after(() => w.close());

  function hold(listingId: string, quantity: number, key?: string) {
    return api.post('/api/holds', { listing_id: listingId, quantity }, key);
  }

  describe('POST /api/holds', () => {
    it('holds at Tixstock and here: 201, quantity down, a ledger row naming the hold, expiry = request time + hold minutes', async () => {
      const id = await w.listing(10);
      const t0 = Date.now();
      const res = await hold(id, 3).expect(201);
      const h = res.body;
      assert.equal(h.status, 'active');
      assert.equal(h.quantity, 3);
      assert.equal(h.listing_id, id);
      assert.match(h.tixstock_hold_id, /^[0-9a-z]{26}$/);
      const expires = new Date(h.expires_at).getTime();
      assert.ok(expires >= t0 + 30 * 60_000 - 100 && expires <= Date.now() + 30 * 60_000, 'expires 30 min after the request');
      assert.deepEqual(await quantityOf(id), { quantity: 7, ceiling: 10 });
      const ledger = await ledgerOf(id);
      assert.deepEqual(ledger.at(-1), { reason: 'our.hold', hold_id: h.id, requested: 3, before: 10, after: 7 });
      assert.equal(w.sim.listing(id)!.quantity, 7);
      assert.equal(w.sim.holds().find((x) => x.holdId === h.tixstock_hold_id)!.quantity, 3);

      assert.deepEqual((await api.get(`/api/holds/${h.id}`).expect(200)).body, h);
      const list = (await api.get(`/api/holds?listing_id=${id}&status=active`).expect(200)).body;
      assert.deepEqual(
        list.items.map((x: { id: string }) => x.id),
        [h.id],
      );
      assert.equal((await api.get(`/api/holds?listing_id=${id}&status=released`).expect(200)).body.items.length, 0);
      await api.get('/api/holds/999999999').expect(404);
      await api.get('/api/holds?status=nonsense').expect(400);
    });

    for (const [name, body, field] of [
      ['quantity 0', { quantity: 0 }, 'body.quantity'],
      ['quantity -1', { quantity: -1 }, 'body.quantity'],
      ['quantity 1.5', { quantity: 1.5 }, 'body.quantity'],
      ['quantity "2"', { quantity: '2' }, 'body.quantity'],
      ['no quantity', { quantity: undefined }, 'body.quantity'],
      ['no listing_id', { listing_id: undefined }, 'body.listing_id'],
    ] as const) {
      it(`${name}: 400 naming ${field}, nothing called, nothing changed`, async () => {
        const id = await w.listing(5);
        const calls = w.sim.calls.length;
        const res = await api.post('/api/holds', { listing_id: id, quantity: 1, ...body }).expect(400);
        assert.equal(res.body.success, false);
        assert.ok(
          res.body.errors.some((e: string) => e.startsWith(`${field}:`)),
          JSON.stringify(res.body),
        );
        assert.equal(w.sim.calls.length, calls);
        assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
        assert.equal((await api.get(`/api/holds?listing_id=${id}`).expect(200)).body.items.length, 0);
      });
    }

    it('unknown listing: 404; deleted listing or not enough here: 409; nothing called', async () => {
      const calls = w.sim.calls.length;
      const unknown = await hold('999999999', 1).expect(404);
      assert.match(unknown.body.message, /listing 999999999 not found/);
      await hold('not-a-listing', 1).expect(404);
      const id = await w.listing(2);
      const short = await hold(id, 3).expect(409);
      assert.equal(short.body.quantity_available, 2);
      await sendWebhook(w.app, webhook('ticket.delete', { listing_id: id })).expect(200);
      await hold(id, 1).expect(409);
      assert.equal(w.sim.calls.length, calls);
      assert.equal((await testSql()`select count(*)::int as n from holds where listing_id = ${id}`)[0]!.n, 0);
    });

    it('Tixstock has fewer tickets (its code 108): 409, the reservation undone in the ledger', async () => {
      const id = await w.listing(5);
      w.sim.putListing({ id, quantity: 1 });
      const res = await hold(id, 2).expect(409);
      assert.equal(res.body.success, false);
      assert.ok(res.body.errors.length >= 1);
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      const ledger = await ledgerOf(id);
      assert.deepEqual(
        ledger.slice(-2).map((r) => [r.reason, r.before, r.after]),
        [
          ['our.hold', 5, 3],
          ['our.hold.undone', 3, 5],
        ],
      );
      assert.equal((await api.get(`/api/holds/${res.body.hold_id}`).expect(200)).body.status, 'failed');
    });

    it('a listing Tixstock does not know: 404, undone', async () => {
      const id = await w.listing(5);
      w.sim.state.listings.delete(w.sim.state.byId(id)!.key);
      await hold(id, 1).expect(404);
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
    });

    it('Tixstock refusing our token (a configuration error): 503, undone, nothing held', async () => {
      const id = await w.listing(5);
      const wrong = createApp({
        sql: testSql(),
        config: w.config,
        tixstock: createTixstockClient(w.config, { token: 'not-the-token' }),
      });
      const res = await salesApi(wrong).post('/api/holds', { listing_id: id, quantity: 2 }).expect(503);
      assert.ok(res.headers['retry-after']);
      assert.match(res.body.message, /configuration/);
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      assert.equal(w.sim.listing(id)!.quantity, 5);
    });

    for (const kind of ['500', '502', '503', '429'] as SimFaultKind[]) {
      it(`fault ${kind} on hold: 503 + Retry-After, nothing held here or at Tixstock`, async () => {
        const id = await w.listing(5);
        w.sim.fault({ call: 'hold', kind, times: 1 });
        const res = await hold(id, 2, `k-${kind}-${id}`).expect(503);
        assert.ok(res.headers['retry-after']);
        assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
        assert.equal(w.sim.listing(id)!.quantity, 5);
        if (kind === '429') await new Promise((r) => setTimeout(r, 250)); // the client's pause (200 ms in these tests)
      });
    }

    // A reset after the request was sent cannot tell whether Tixstock applied it: unknown too.
    for (const kind of ['applied_no_answer', 'applied_reset', 'no_answer', 'reset', '504'] as SimFaultKind[]) {
      it(`fault ${kind} on hold: 503, the tickets stay held here until the hold would have expired`, async () => {
        const id = await w.listing(5);
        w.sim.fault({ call: 'hold', kind, times: 1 });
        const res = await hold(id, 2).expect(503);
        assert.ok(res.headers['retry-after']);
        assert.equal(res.body.hold.status, 'pending');
        assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
        // Not expired early by a sweep.
        await expireDueHolds(testSql());
        assert.equal((await api.get(`/api/holds/${res.body.hold.id}`).expect(200)).body.status, 'pending');
        const expires = new Date(res.body.hold.expires_at).getTime();
        assert.ok(expires >= Date.now() + 30 * 60_000, 'kept at least as long as Tixstock could hold it');
      });
    }
  });

  describe('Idempotency-Key', () => {
    it('the same key answers the first result and calls Tixstock once; another body with it is refused', async () => {
      const id = await w.listing(10);
      const key = `key-${id}`;
      const from = w.sim.calls.length;
      const first = await hold(id, 2, key).expect(201);
      const again = await hold(id, 2, key).expect(201);
      assert.deepEqual(again.body, first.body);
      assert.equal(callsOf(w.sim, 'hold', from).length, 1);
      assert.deepEqual(await quantityOf(id), { quantity: 8, ceiling: 10 });
      const other = await hold(id, 3, key).expect(400);
      assert.match(other.body.message, /Idempotency-Key/);
      // A refusal is remembered too.
      const short = await hold(id, 50, `${key}-b`).expect(409);
      assert.deepEqual((await hold(id, 50, `${key}-b`).expect(409)).body, short.body);
    });

    it('concurrent requests with one key make ONE Tixstock call; the others get 409 in progress', async () => {
      const id = await w.listing(10);
      const key = `concurrent-${id}`;
      w.sim.fault({ call: 'hold', kind: 'slow', ms: 600, times: 1 });
      const from = w.sim.calls.length;
      const replies = await Promise.all(Array.from({ length: 6 }, () => hold(id, 1, key)));
      const statuses = replies.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409], JSON.stringify(replies.map((r) => r.body)));
      assert.equal(callsOf(w.sim, 'hold', from).length, 1);
      assert.deepEqual(await quantityOf(id), { quantity: 9, ceiling: 10 });
      assert.equal((await hold(id, 1, key).expect(201)).body.id, replies.find((r) => r.status === 201)!.body.id);
    });

    it('a key whose answer was never stored (its process died) is answered from its hold once that is settled', async () => {
      const id = await w.listing(4);
      const key = `orphan-${id}`;
      const first = (await hold(id, 1, key).expect(201)).body;
      // As if the process had died between Tixstock's answer and storing ours.
      await testSql()`update idempotency_keys set response_status = null, response = null where key = ${key}`;
      await testSql()`update holds set status = 'pending' where id = ${first.id}`;
      await hold(id, 1, key).expect(409);
      await testSql()`update holds set status = 'active' where id = ${first.id}`;
      assert.equal((await hold(id, 1, key).expect(201)).body.id, first.id);
      assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 4 });
    });

    it('after "Tixstock unreachable" (changed nothing) the same key may try again', async () => {
      const id = await w.listing(4);
      const key = `retry-${id}`;
      w.sim.fault({ call: 'hold', kind: '503', times: 1 });
      await hold(id, 1, key).expect(503);
      await hold(id, 1, key).expect(201);
      assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 4 });
    });
  });

  describe('POST /api/holds/:id/release', () => {
    it('partly, then the rest: tickets back here and at Tixstock, the hold released', async () => {
      const id = await w.listing(10);
      const h = (await hold(id, 4).expect(201)).body;
      const part = await api.post(`/api/holds/${h.id}/release`, { quantity: 1 }).expect(200);
      assert.equal(part.body.quantity, 3);
      assert.equal(part.body.status, 'active');
      assert.deepEqual(await quantityOf(id), { quantity: 7, ceiling: 10 });
      const rest = await api.post(`/api/holds/${h.id}/release`).expect(200);
      assert.equal(rest.body.quantity, 0);
      assert.equal(rest.body.status, 'released');
      assert.deepEqual(await quantityOf(id), { quantity: 10, ceiling: 10 });
      assert.equal(w.sim.listing(id)!.quantity, 10);
      assert.deepEqual(
        (await ledgerOf(id)).slice(-3).map((r) => [r.reason, r.hold_id, r.before, r.after]),
        [
          ['our.hold', h.id, 10, 6],
          ['our.release', h.id, 6, 7],
          ['our.release', h.id, 7, 10],
        ],
      );
      await api.post(`/api/holds/${h.id}/release`).expect(409);
    });

    it('more than held, 0, "1", unknown hold: 409/400/400/404, nothing called', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      const from = w.sim.calls.length;
      await api.post(`/api/holds/${h.id}/release`, { quantity: 3 }).expect(409);
      const zero = await api.post(`/api/holds/${h.id}/release`, { quantity: 0 }).expect(400);
      assert.ok(zero.body.errors[0].startsWith('body.quantity:'));
      await api.post(`/api/holds/${h.id}/release`, { quantity: '1' }).expect(400);
      await api.post('/api/holds/999999999/release').expect(404);
      assert.equal(w.sim.calls.length, from);
      assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
    });

    it('a release never lifts the quantity above the ceiling a ticket.update set meanwhile', async () => {
      const id = await w.listing(10);
      const h = (await hold(id, 4).expect(201)).body;
      // Tixstock's absolute quantity (which already counts our hold) arrives: 6 left, ceiling 6.
      const base = JSON.parse((await import('./helpers.js')).fixture('ticket.add.json').toString('utf8'));
      await sendWebhook(
        w.app,
        webhook('ticket.update', { ...base.data, id, number_of_tickets_for_sale: { quantity_available: 6 } }),
      ).expect(200);
      await api.post(`/api/holds/${h.id}/release`).expect(200);
      assert.deepEqual(await quantityOf(id), { quantity: 6, ceiling: 6 });
    });

    for (const kind of ['500', '502', '503', '429', 'reset', 'no_answer'] as SimFaultKind[]) {
      it(`fault ${kind} on release: 503, nothing changed, the hold usable again`, async () => {
        const id = await w.listing(5);
        const h = (await hold(id, 2).expect(201)).body;
        w.sim.fault({ call: 'release', kind, times: 1 });
        await api.post(`/api/holds/${h.id}/release`).expect(503);
        assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
        assert.equal((await api.get(`/api/holds/${h.id}`).expect(200)).body.quantity, 2);
        if (kind === '429') await new Promise((r) => setTimeout(r, 250));
        await api.post(`/api/holds/${h.id}/release`).expect(200);
        assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      });
    }

    it('releases racing on one hold: Tixstock decides, and the tickets come back exactly once', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      w.sim.fault({ call: 'release', kind: 'slow', ms: 150, times: 2 });
      const both = await Promise.all([api.post(`/api/holds/${h.id}/release`), api.post(`/api/holds/${h.id}/release`)]);
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 409], JSON.stringify(both.map((r) => r.body)));
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      assert.equal((await ledgerOf(id)).filter((r) => r.reason === 'our.release').length, 1);

      const h2 = (await hold(id, 4).expect(201)).body;
      w.sim.fault({ call: 'release', kind: 'slow', ms: 150, times: 3 });
      const parts = await Promise.all([1, 1, 2].map((n) => api.post(`/api/holds/${h2.id}/release`, { quantity: n })));
      assert.deepEqual(
        parts.map((r) => r.status),
        [200, 200, 200],
      );
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      const after = (await api.get(`/api/holds/${h2.id}`).expect(200)).body;
      assert.deepEqual([after.status, after.quantity], ['released', 0]);
    });

    it('a hold expired here by the sweep while Tixstock releases it: its tickets come back once', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      w.sim.fault({ call: 'release', kind: 'slow', ms: 300, times: 1 });
      const release = api.post(`/api/holds/${h.id}/release`).then((r) => r);
      await new Promise((r) => setTimeout(r, 100));
      await testSql()`update holds set expires_at = now() - interval '1 second' where id = ${h.id}`;
      assert.equal(await expireDueHolds(testSql()), 1);
      const r = await release;
      assert.equal(r.status, 200);
      assert.equal(r.body.status, 'expired');
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      assert.deepEqual(
        (await ledgerOf(id)).slice(-2).map((x) => x.reason),
        ['our.hold', 'our.hold.expired'],
      );
    });

    it('fault applied_no_answer on release: 503, the tickets stay off here (never offered early)', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      w.sim.fault({ call: 'release', kind: 'applied_no_answer', times: 1 });
      await api.post(`/api/holds/${h.id}/release`).expect(503);
      assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
      assert.equal(w.sim.listing(id)!.quantity, 5); // released at Tixstock
      // Retrying is safe: Tixstock refuses a second release of the same tickets.
      const again = await api.post(`/api/holds/${h.id}/release`);
      assert.equal(again.status, 409, JSON.stringify(again.body));
      assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
    });
  });

  describe('POST /api/holds/:id/order', () => {
    it('sells held tickets: 201, the order recorded, the ceiling lowered so no release webhook brings them back', async () => {
      const id = await w.listing(10);
      const h = (await hold(id, 3).expect(201)).body;
      const orderId = nextOrderId();
      const res = await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 3), `o-${orderId}`).expect(201);
      assert.equal(res.body.status, 'ordered');
      assert.equal(res.body.order_id, orderId);
      assert.equal(res.body.sold_quantity, 3);
      assert.deepEqual(await quantityOf(id), { quantity: 7, ceiling: 7 });
      const simOrder = w.sim.orders().find((o) => o.orderId === orderId)!;
      assert.equal(simOrder.quantity, 3);
      assert.equal(simOrder.status, 'Pending Approval');
      const order = (await api.get(`/api/orders/${encodeURIComponent(orderId)}`).expect(200)).body;
      assert.equal(order.order_status, 'Pending Approval');
      assert.equal(order.customer_email, 'ada@example.org');
      assert.equal(order.tixstock_sync.status, 'done');
      // Another reseller's release cannot lift the quantity past the lowered ceiling.
      await sendWebhook(w.app, webhook('ticket.release', { external_id: id, release_quantity: 5 })).expect(200);
      assert.deepEqual(await quantityOf(id), { quantity: 7, ceiling: 7 });
      // The same key answers the same; the order cannot be placed twice.
      assert.deepEqual(
        (await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 3), `o-${orderId}`).expect(201)).body,
        res.body,
      );
      await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 3)).expect(409);
      assert.equal(w.sim.orders().filter((o) => o.orderId === orderId).length, 1);
    });

    it('part of a hold: the rest stays off until the hold expires, then comes back', async () => {
      const id = await w.listing(10);
      const h = (await hold(id, 3).expect(201)).body;
      const res = await api.post(`/api/holds/${h.id}/order`, orderBody(nextOrderId(), 2)).expect(201);
      assert.equal(res.body.quantity, 1);
      assert.deepEqual(await quantityOf(id), { quantity: 7, ceiling: 8 });
      await testSql()`update holds set expires_at = now() - interval '1 second' where id = ${h.id}`;
      await expireDueHolds(testSql());
      assert.deepEqual(await quantityOf(id), { quantity: 8, ceiling: 8 });
      assert.equal((await api.get(`/api/holds/${h.id}`).expect(200)).body.status, 'ordered');
    });

    for (const [name, patch, field] of [
      ['no order_id', { order_id: undefined }, 'body.order_id'],
      ['no customer', { customer: undefined }, 'body.customer'],
      ['customer without id', { customer: { first_name: 'A' } }, 'body.customer.id'],
      ['quantity 0', { quantity: 0 }, 'body.quantity'],
      ['quantity "2"', { quantity: '2' }, 'body.quantity'],
      ['bad currency', { currency: 'pounds' }, 'body.currency'],
    ] as const) {
      it(`${name}: 400 naming ${field}, nothing called`, async () => {
        const id = await w.listing(5);
        const h = (await hold(id, 2).expect(201)).body;
        const from = w.sim.calls.length;
        const res = await api.post(`/api/holds/${h.id}/order`, { ...orderBody(nextOrderId(), 2), ...patch }).expect(400);
        assert.ok(
          res.body.errors.some((e: string) => e.startsWith(`${field}`)),
          JSON.stringify(res.body),
        );
        assert.equal(w.sim.calls.length, from);
        assert.equal((await api.get(`/api/holds/${h.id}`).expect(200)).body.status, 'active');
      });
    }

    it('more than held: 409; an expired or released hold: 409; unknown hold: 404; nothing called', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      const from = w.sim.calls.length;
      await api.post(`/api/holds/${h.id}/order`, orderBody(nextOrderId(), 3)).expect(409);
      await api.post('/api/holds/999999999/order', orderBody(nextOrderId(), 1)).expect(404);
      await testSql()`update holds set expires_at = now() - interval '1 second' where id = ${h.id}`;
      const expired = await api.post(`/api/holds/${h.id}/order`, orderBody(nextOrderId(), 2)).expect(409);
      assert.match(expired.body.message, /expired/);
      assert.equal(w.sim.calls.length, from);
    });

    for (const kind of ['500', '502', '503', '429'] as SimFaultKind[]) {
      it(`fault ${kind} on order/add: 503, no order here or at Tixstock, the hold usable again`, async () => {
        const id = await w.listing(5);
        const h = (await hold(id, 2).expect(201)).body;
        const orderId = nextOrderId();
        w.sim.fault({ call: 'order/add', kind, times: 1 });
        await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 2), `k-${orderId}`).expect(503);
        await api.get(`/api/orders/${orderId}`).expect(404);
        assert.equal(w.sim.orders().filter((o) => o.orderId === orderId).length, 0);
        assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
        if (kind === '429') await new Promise((r) => setTimeout(r, 250));
        await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 2), `k-${orderId}`).expect(201);
        assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 3 });
      });
    }

    it('order/add refused by Tixstock with a validation error (its order id taken there): 502 with its messages, nothing sold, the hold usable', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      const orderId = nextOrderId();
      w.sim.state.orders.set(orderId, {
        orderId,
        holdId: 'other',
        listingId: id,
        quantity: 1,
        status: 'Approved',
        body: {},
        updates: [],
      });
      const res = await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 2)).expect(502);
      assert.deepEqual(res.body.errors, ['The order id has already been taken.']);
      await api.get(`/api/orders/${orderId}`).expect(404);
      assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
      await api.post(`/api/holds/${h.id}/order`, orderBody(nextOrderId(), 2)).expect(201);
    });

    it('order/add refused by Tixstock (hold expired there): 409, nothing sold here', async () => {
      const id = await w.listing(5);
      const h = (await hold(id, 2).expect(201)).body;
      w.sim.advance(31 * 60_000);
      try {
        const res = await api.post(`/api/holds/${h.id}/order`, orderBody(nextOrderId(), 2));
        assert.ok([409, 502].includes(res.status), JSON.stringify(res.body));
        assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
      } finally {
        w.sim.advance(-31 * 60_000);
      }
    });

    for (const kind of ['applied_no_answer', 'reset', 'no_answer', '504'] as SimFaultKind[])
      it(`fault ${kind} on order/add: 503, the tickets stay off, the hold is not ordered twice, and they stay off after expiry`, async () => {
        const id = await w.listing(5);
        const h = (await hold(id, 2).expect(201)).body;
        const orderId = nextOrderId();
        w.sim.fault({ call: 'order/add', kind, times: 1 });
        const lost = await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 2), `k-${orderId}`).expect(503);
        assert.match(lost.body.message, /may or may not exist/);
        // The same key gives the same answer without calling again.
        const from = w.sim.calls.length;
        await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 2), `k-${orderId}`).expect(503);
        // Without the key: the hold is busy with the order whose outcome is unknown.
        await api.post(`/api/holds/${h.id}/order`, orderBody(orderId, 2)).expect(409);
        assert.equal(callsOf(w.sim, 'order/add', from).length, 0);
        assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 });
        // Nor released or ordered after the call's window: it may be sold.
        await testSql()`update holds set busy_until = now() - interval '1 second' where id = ${h.id}`;
        await api.post(`/api/holds/${h.id}/release`).expect(409);
        await api.post(`/api/holds/${h.id}/order`, orderBody(nextOrderId(), 2)).expect(409);
        assert.equal(callsOf(w.sim, 'release', from).length + callsOf(w.sim, 'order/add', from).length, 0);
        await testSql()`update holds set expires_at = now() - interval '1 second', busy_until = now() - interval '1 second' where id = ${h.id}`;
        await expireDueHolds(testSql());
        assert.deepEqual(
          await quantityOf(id),
          { quantity: 3, ceiling: 5 },
          'possibly sold: never offered again before a reconciliation',
        );
        assert.equal((await ledgerOf(id)).at(-1)!.reason, 'our.order.unknown');
      });
  });
});
