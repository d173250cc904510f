// The Tixstock simulator over real HTTP with plain fetch: the documented reply and error shapes,
// holds that expire, faults, the control endpoints, and the webhook player against the real
// service (signed PHP-style bodies, a listing add that learns our id, other resellers' changes,
// order.update and a fulfilment PDF).
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PDFDocument } from 'pdf-lib';
import { phpJson } from '../src/tixstock/sim-webhooks.js';
import { listingResource } from '../src/tixstock/resources.js';
import { startSimulator, type Simulator } from '../src/tixstock/simulator.js';
import { api, resetDatabase, testApp, TOKEN } from './helpers.js';

const ULID = /^[0-9a-hjkmnp-tv-z]{26}$/;

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const until = Date.now() + timeoutMs; !(await check()); await new Promise((r) => setTimeout(r, 25))) {
    if (Date.now() > until) throw new Error('timed out');
  }
}

async function call(sim: Simulator, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${sim.url}/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function control(sim: Simulator, method: string, path: string, body?: unknown) {
  const res = await fetch(`${sim.origin}/_sim/${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

describe('Tixstock simulator', () => {
  let sim: Simulator;
  before(async () => (sim = await startSimulator({ token: TOKEN, holdMinutes: 30 })));
  beforeEach(() => {
    sim.reset();
    sim.putListing({ id: 'L1', quantity: 5 });
  });
  after(() => sim.close());

  describe('reply shapes', () => {
    it('hold: data.quantity_available and meta as the docs print it', async () => {
      const r = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 2 });
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.body), ['data', 'meta', 'message']);
      assert.deepEqual(r.body.data, { quantity_available: 3 });
      assert.deepEqual(Object.keys(r.body.meta), ['mode', 'type', 'external_id', 'hold_id', 'quantity', 'request_id']);
      assert.deepEqual(
        [r.body.meta.mode, r.body.meta.type, r.body.meta.external_id, r.body.meta.quantity],
        ['Sandbox', 'ticket.hold', 'L1', 2],
      );
      assert.match(r.body.meta.hold_id, ULID);
      assert.match(r.body.meta.request_id, ULID);
      assert.equal(r.body.message, 'Ticket(s) has successfully been put on hold.');
    });

    it('release: both URL forms, partial then the rest; the hold is then gone', async () => {
      const { body: h } = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 3 });
      const holdId = h.meta.hold_id as string;
      const r1 = await call(sim, 'POST', `tickets/release/${holdId}/1`);
      assert.equal(r1.status, 200);
      assert.deepEqual(r1.body.data, { quantity_available: 3 });
      assert.deepEqual(Object.keys(r1.body.meta), ['type', 'mode', 'hold_id', 'quantity', 'request_id']);
      assert.equal(r1.body.meta.type, 'ticket.release');
      assert.equal(r1.body.message, 'Ticket(s) successfully released.');
      const r2 = await call(sim, 'POST', `tickets/release/${holdId}`, { hold_id: holdId, release_quantity: 2 });
      assert.deepEqual(r2.body.data, { quantity_available: 5 });
      const again = await call(sim, 'POST', `tickets/release/${holdId}/1`);
      assert.equal(again.status, 404);
    });

    it('order/add, order/update (Commissionable is final), broker/close with a top-level success "true"', async () => {
      const { body: h } = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 3 });
      const order = {
        order_id: 'O-1',
        order_status: 'Pending Approval',
        datetime: '2027-02-02T10:15:00+0000',
        currency: 'GBP',
        customer: { id: 'c1' },
      };
      const add = await call(sim, 'POST', `order/add/${h.meta.hold_id}/2`, order);
      assert.equal(add.status, 200);
      assert.equal(add.body.data.id, 'O-1');
      assert.equal(add.body.data.status, 'Pending Approval');
      assert.equal(sim.listing('L1')!.quantity, 3, 'selling 2 of 3 held gives 1 back');
      assert.equal(sim.listing('L1')!.sold, 2);
      const dup = await call(sim, 'POST', `order/add/${h.meta.hold_id}/1`, order);
      assert.equal(dup.status, 422);
      assert.deepEqual(dup.body.errors, ['The order id has already been taken.']);

      const upd = await call(sim, 'POST', 'order/update/O-1', { order_status: 'Commissionable' });
      assert.equal(upd.body.data.status, 'Commissionable');
      const late = await call(sim, 'POST', 'order/update/O-1', { order_status: 'Refunded' });
      assert.equal(late.status, 400);
      assert.deepEqual(Object.keys(late.body.errors), ['title', 'code']);

      const close = await call(sim, 'POST', 'broker/close/289367498');
      assert.deepEqual(close.body.data, { broker_id: '289367498' });
      assert.equal(close.body.success, 'true');
      assert.equal(close.body.message, 'The Tixstock broker has been successfully disconnected');
      assert.deepEqual(Object.keys(close.body.meta), ['mode', 'request_id']);
    });

    it('tickets/get: pages of per_page (at most 50), links.next, meta.current_page, listings without an id', async () => {
      for (let i = 2; i <= 12; i++) sim.putListing({ id: `L${i}`, quantity: i });
      sim.putListing({ id: null, quantity: 1 });
      const p1 = await call(sim, 'GET', 'tickets/get?per_page=5&page=1');
      assert.equal(p1.body.data.length, 5);
      assert.equal(p1.body.meta.current_page, 1);
      assert.equal(p1.body.meta.per_page, '5');
      assert.equal(p1.body.links.prev, null);
      assert.equal(p1.body.links.next, `${sim.url}/tickets/get?per_page=5&page=2`);
      const p3 = await call(sim, 'GET', 'tickets/get?per_page=5&page=3');
      assert.equal(p3.body.data.length, 3);
      assert.equal(p3.body.links.next, null);
      assert.equal(p3.body.data[2].id, null);
      const one = await call(sim, 'GET', 'tickets/get?listing_id=L7');
      assert.equal(one.body.data.length, 1);
      assert.equal(one.body.data[0].number_of_tickets_for_sale.quantity_available, 7);
      for (const item of [...p1.body.data, ...p3.body.data]) {
        const parsed = listingResource.safeParse(item);
        assert.ok(parsed.success, `a whole listing resource, as the webhooks carry: ${JSON.stringify(parsed.error?.issues)}`);
      }
      sim.putListing({ id: 'E1', quantity: 1, eventId: '999' });
      assert.equal((await call(sim, 'GET', 'tickets/get?listing_id=E1')).body.data[0].event.id, '999');
      const tooMany = await call(sim, 'GET', 'tickets/get?per_page=51');
      assert.equal(tooMany.status, 422);
      assert.deepEqual(tooMany.body, { data: [], meta: {}, errors: ['The per page may not be greater than 50.'] });
    });
  });

  describe('refusals', () => {
    it('the documented codes in the general error shape', async () => {
      const more = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 6 });
      assert.deepEqual(
        [more.status, more.body],
        [
          400,
          {
            data: [],
            meta: {},
            errors: { title: 'The on hold quantity cannot be greater then the listing quantity.', code: '108' },
          },
        ],
      );
      for (const q of [0, -1, 1.5, 'x', null]) {
        const r = await call(sim, 'POST', 'tickets/hold/L1', { quantity: q });
        assert.equal(r.body.errors.code, '106', `quantity ${JSON.stringify(q)}`);
      }
      const { body: h } = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 });
      assert.equal((await call(sim, 'POST', `tickets/release/${h.meta.hold_id}/2`)).body.errors.code, '109');
      const unknown = await call(sim, 'POST', 'tickets/hold/nope', { quantity: 1 });
      assert.deepEqual(
        [unknown.status, unknown.body.errors],
        [404, { title: 'Sorry the resource cannot be found.', code: '404' }],
      );
      assert.equal(sim.listing('L1')!.quantity, 4);
    });

    it('401 without or with a wrong token (codes 100 and 401); 404 for an unknown endpoint, 405 for a wrong method', async () => {
      const none = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 }, null);
      assert.deepEqual([none.status, none.body.errors.code], [401, '100']);
      const wrong = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 }, 'not-the-token');
      assert.deepEqual([wrong.status, wrong.body.errors], [401, { title: 'Invalid Bearer Token.', code: '401' }]);
      assert.equal((await call(sim, 'GET', 'tickets/nothing')).body.errors.code, '404');
      assert.equal((await call(sim, 'GET', 'tickets/hold/L1')).status, 405);
      assert.equal(sim.listing('L1')!.quantity, 5);
    });

    it('order/add validation errors: the list shape, at the configured status', async () => {
      const s = await startSimulator({ token: TOKEN, validationStatus: 400 });
      try {
        s.putListing({ id: 'L1', quantity: 2 });
        const { body: h } = await call(s, 'POST', 'tickets/hold/L1', { quantity: 1 });
        const r = await call(s, 'POST', `order/add/${h.meta.hold_id}/1`, { order_id: 'X' });
        assert.equal(r.status, 400);
        assert.deepEqual(r.body.errors, [
          'The order status field is required.',
          'The datetime field is required.',
          'The currency field is required.',
          'The customer field is required.',
        ]);
      } finally {
        await s.close();
      }
    });

    it('its own rate limit: past it every call is 429 in the pf shape until the block ends', async () => {
      const s = await startSimulator({ token: TOKEN, rateLimitPerMinute: 2, rateBlockMs: 60_000 });
      try {
        assert.equal((await call(s, 'GET', 'tickets/get')).status, 200);
        assert.equal((await call(s, 'GET', 'tickets/get')).status, 200);
        const r = await call(s, 'GET', 'tickets/get');
        assert.deepEqual(
          [r.status, r.body],
          [
            429,
            {
              data: [],
              meta: {},
              errors: { title: 'Too many request made, subsequent requests will be blocked for the next minute.', code: '429' },
            },
          ],
        );
        assert.equal((await call(s, 'POST', 'broker/close/1')).status, 429);
      } finally {
        await s.close();
      }
    });
  });

  describe('holds expire', () => {
    it('after holdMinutes the tickets come back and the hold is unknown to release and order/add', async () => {
      const { body: h } = await call(sim, 'POST', 'tickets/hold/L1', { quantity: 4 });
      sim.advance(29 * 60_000);
      assert.equal(sim.listing('L1')!.quantity, 1);
      sim.advance(60_000);
      assert.equal(sim.listing('L1')!.quantity, 5);
      assert.equal(sim.holds()[0]!.state, 'expired');
      assert.equal((await call(sim, 'POST', `tickets/release/${h.meta.hold_id}/1`)).status, 404);
      const order = {
        order_id: 'late',
        order_status: 'Approved',
        datetime: '2027-02-02T10:15:00+0000',
        currency: 'GBP',
        customer: { id: 'c' },
      };
      assert.equal((await call(sim, 'POST', `order/add/${h.meta.hold_id}/1`, order)).status, 404);
    });

    it('fractions of a minute', async () => {
      const s = await startSimulator({ token: TOKEN, holdMinutes: 0.005 });
      try {
        s.putListing({ id: 'L1', quantity: 2 });
        await call(s, 'POST', 'tickets/hold/L1', { quantity: 2 });
        const [hold] = s.holds();
        assert.equal(hold!.expiresAt - hold!.createdAt, 300);
        await new Promise((r) => setTimeout(r, Math.max(0, hold!.expiresAt - Date.now()) + 50));
        assert.equal(s.listing('L1')!.quantity, 2);
        assert.equal(hold!.state, 'expired');
      } finally {
        await s.close();
      }
    });
  });

  describe('faults', () => {
    it('per call and for all, `times` of them, then normal answers again', async () => {
      sim.fault({ call: 'hold', kind: '503', times: 2 });
      sim.fault({ call: '*', kind: '500', times: 1 });
      assert.equal((await call(sim, 'GET', 'tickets/get')).status, 500);
      assert.equal((await call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 })).status, 503);
      assert.equal((await call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 })).status, 503);
      assert.equal((await call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 })).status, 200);
      assert.equal(sim.listing('L1')!.quantity, 4, 'the error answers applied nothing');
      assert.deepEqual(
        sim.calls.map((c) => [c.call, c.status, c.fault]),
        [
          ['tickets/get', 500, '500'],
          ['hold', 503, '503'],
          ['hold', 503, '503'],
          ['hold', 200, undefined],
        ],
      );
      assert.throws(() => sim.fault({ call: 'nope' as 'hold', kind: '500' }), /call: one of/);
      assert.throws(() => sim.fault({ call: 'hold', kind: '500', times: 0 }), /times:/);
    });

    it('reset cuts the connection before applying, applied_reset after', async () => {
      sim.fault({ call: 'hold', kind: 'reset', times: 1 });
      await assert.rejects(call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 }));
      assert.equal(sim.listing('L1')!.quantity, 5);
      sim.fault({ call: 'hold', kind: 'applied_reset', times: 1 });
      await assert.rejects(call(sim, 'POST', 'tickets/hold/L1', { quantity: 1 }));
      assert.equal(sim.listing('L1')!.quantity, 4);
    });
  });

  describe('control endpoints', () => {
    it('POST /_sim/listings, /_sim/faults, /_sim/clock; GET /_sim/state, /_sim/calls; DELETE /_sim/faults', async () => {
      assert.equal((await control(sim, 'POST', 'listings', { id: 'C1', quantity: 3 })).status, 201);
      assert.equal((await control(sim, 'POST', 'faults', { call: 'hold', kind: '503', times: 1 })).status, 201);
      assert.equal((await control(sim, 'POST', 'faults', { call: 'hold', kind: 'nonsense' })).status, 400);
      assert.equal((await call(sim, 'POST', 'tickets/hold/C1', { quantity: 1 })).status, 503);
      assert.equal((await call(sim, 'POST', 'tickets/hold/C1', { quantity: 1 })).status, 200);
      sim.fault({ call: 'hold', kind: '500' });
      assert.equal((await control(sim, 'DELETE', 'faults')).status, 200);
      assert.equal((await call(sim, 'POST', 'tickets/hold/C1', { quantity: 1 })).status, 200);
      const state = (await control(sim, 'GET', 'state')).body;
      assert.equal(state.listings.find((l: { id: string }) => l.id === 'C1').quantity, 1);
      assert.equal(state.holds.length, 2);
      assert.equal((await control(sim, 'GET', 'calls')).body.length, 3);
      await control(sim, 'POST', 'clock', { advance_ms: 31 * 60_000 });
      assert.equal((await control(sim, 'GET', 'state')).body.listings.find((l: { id: string }) => l.id === 'C1').quantity, 3);
      assert.equal((await control(sim, 'GET', 'nothing')).status, 404);
    });
  });

  describe('webhook player against the service', () => {
    let server: Server;
    let serviceUrl: string;
    let app: ReturnType<typeof testApp>['app'];
    before(async () => {
      ({ app } = testApp());
      server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      serviceUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    beforeEach(() => resetDatabase());
    after(() => new Promise<void>((r) => server.close(() => r())));

    it('writes bodies like PHP (\\/ and \\uXXXX)', () => {
      assert.equal(phpJson({ url: 'https://x/y', name: 'Café' }).toString(), '{"url":"https:\\/\\/x\\/y","name":"Caf\\u00e9"}');
    });

    it("a listing, other resellers' hold, release and sale, then order.update and a fulfilment PDF, all applied by the service", async () => {
      const s = await startSimulator({ token: TOKEN, serviceUrl });
      try {
        const listing = await s.webhooks.addListing({ quantity: 6 });
        assert.ok(listing.id, 'the simulator learnt our listing id');
        const id = listing.id!;
        const quantity = async () => (await api(app).get(`/api/listings/${id}`)).body.quantity;
        assert.equal(await quantity(), 6);
        assert.equal((await s.webhooks.otherHold(id, 2)).status, 200);
        assert.equal(await quantity(), 4);
        await s.webhooks.otherRelease(id, 1);
        assert.equal(await quantity(), 5);
        const sale = await s.webhooks.otherSale(id, 1, { fromHold: true, orderId: 'R-1' });
        assert.equal(sale.status, 200, JSON.stringify(sale.body));
        assert.equal(await quantity(), 5);
        assert.equal(s.listing(id)!.quantity, 5);
        const tickets = await call(s, 'GET', `tickets/get?listing_id=${id}`);
        assert.equal(
          tickets.body.data[0].number_of_tickets_for_sale.quantity_available,
          5,
          'tickets/get agrees with the service',
        );

        assert.equal((await s.webhooks.orderUpdate('R-1', { status: 'Delivered' })).status, 200);
        const f = await s.webhooks.fulfil('R-1', { listingId: id, seat: '22' });
        assert.equal(f.status, 200, JSON.stringify(f.body));
        const order = await api(app).get('/api/orders/R-1');
        assert.equal(order.status, 200);
        assert.equal(order.body.tickets.length, 1);
        assert.equal(order.body.tickets[0].pages, 1);
        const pdf = await api(app)
          .get(`/api/tickets/${order.body.tickets[0].id}.pdf`)
          .buffer(true)
          .parse((r, cb) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => cb(null, Buffer.concat(chunks)));
          });
        assert.equal((await PDFDocument.load(pdf.body as Buffer)).getPageCount(), 1);
      } finally {
        await s.close();
      }
    });

    it('echoOwnHolds: the holding reseller also gets ticket.hold and ticket.release for its own hold', async () => {
      const s = await startSimulator({ token: TOKEN, serviceUrl, echoOwnHolds: true });
      try {
        const id = (await s.webhooks.addListing({ quantity: 4 })).id!;
        const quantity = async () => (await api(app).get(`/api/listings/${id}`)).body.quantity as number;
        const { body: h } = await call(s, 'POST', `tickets/hold/${id}`, { quantity: 3 });
        await waitFor(async () => (await quantity()) === 1);
        await call(s, 'POST', `tickets/release/${h.meta.hold_id}/2`);
        await waitFor(async () => (await quantity()) === 3);
      } finally {
        await s.close();
      }
    });

    it('sendWebhook: any type, signed over the bytes sent; the service verifies and applies it', async () => {
      const s = await startSimulator({ token: TOKEN });
      const wrong = await startSimulator({ token: 'another-token' });
      try {
        const r = await s.sendWebhook(serviceUrl, 'broker.open', { broker_id: '4401' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal((await wrong.sendWebhook(serviceUrl, 'broker.open', { broker_id: '4401' })).status, 401);
      } finally {
        await s.close();
        await wrong.close();
      }
    });

    it('the same through /_sim/play/* for curl', async () => {
      const s = await startSimulator({ token: TOKEN });
      try {
        const listing = (await control(s, 'POST', 'play/listing', { serviceUrl, quantity: 3 })).body;
        assert.ok(listing.id);
        const held = await control(s, 'POST', 'play/hold', { serviceUrl, listing_id: listing.id, quantity: 1 });
        assert.equal(held.body.status, 200);
        assert.equal((await api(app).get(`/api/listings/${listing.id}`)).body.quantity, 2);
        assert.equal((await control(s, 'POST', 'play/nothing', { serviceUrl })).status, 400);
      } finally {
        await s.close();
      }
    });
  });
});
