// The inventory API (DESIGN.md section 3) behind API_TOKEN, and the health checks.
import assert from 'node:assert/strict';
import request from 'supertest';
import { addListing, api, type App, API_TOKEN, resetDatabase, sendWebhook, testApp, webhook, withQuantity } from './helpers.js';

describe('API', () => {
  let app: App;
  const ids: string[] = [];
  before(async () => {
    app = testApp().app;
    await resetDatabase();
    for (let i = 0; i < 5; i++) {
      ids.push(
        await addListing(app, {
          ...withQuantity(i + 1),
          event: { id: i < 3 ? 'EV-A' : 'EV-B', name: `Event ${i < 3 ? 'A' : 'B'}` },
          broker_id: i % 2 ? 'B1' : 'B2',
        }),
      );
    }
    await sendWebhook(app, webhook('ticket.delete', { listing_id: ids[4] })).expect(200);
  });

  describe('auth', () => {
    it('refuses a missing or wrong bearer token with 401 JSON', async () => {
      const none = await request(app).get('/api/listings').expect(401);
      assert.equal(none.body.success, false);
      assert.match(none.body.message, /bearer token/);
      assert.equal(none.headers['www-authenticate'], 'Bearer');
      await request(app).get('/api/listings').set('Authorization', `Bearer ${API_TOKEN}x`).expect(401);
      await request(app).get('/api/listings').set('Authorization', `Basic ${API_TOKEN}`).expect(401);
    });

    it('is disabled (503) when API_TOKEN is not configured', async () => {
      const res = await request(testApp({ API_TOKEN: '' }).app)
        .get('/api/listings')
        .set('Authorization', 'Bearer ')
        .expect(503);
      assert.match(res.body.message, /API_TOKEN is not configured/);
    });
  });

  describe('listings', () => {
    it('lists oldest first, paged with after', async () => {
      const first = (await api(app).get('/api/listings?limit=2').expect(200)).body;
      assert.deepEqual(
        first.items.map((l: { id: string }) => l.id),
        ids.slice(0, 2),
      );
      assert.equal(first.next, ids[1]);
      const second = (await api(app).get(`/api/listings?limit=2&after=${first.next}`).expect(200)).body;
      assert.deepEqual(
        second.items.map((l: { id: string }) => l.id),
        ids.slice(2, 4),
      );
      const last = (await api(app).get(`/api/listings?limit=2&after=${second.next}`).expect(200)).body;
      assert.deepEqual(
        last.items.map((l: { id: string }) => l.id),
        ids.slice(4),
      );
      assert.equal(last.next, null);
    });

    it('filters by event, broker and status', async () => {
      const byEvent = (await api(app).get('/api/listings?event_id=EV-B').expect(200)).body.items;
      assert.deepEqual(
        byEvent.map((l: { id: string }) => l.id),
        ids.slice(3),
      );
      const byBroker = (await api(app).get('/api/listings?broker_id=B1').expect(200)).body.items;
      assert.deepEqual(
        byBroker.map((l: { id: string }) => l.id),
        [ids[1], ids[3]],
      );
      const deleted = (await api(app).get('/api/listings?status=deleted').expect(200)).body.items;
      assert.deepEqual(
        deleted.map((l: { id: string }) => l.id),
        [ids[4]],
      );
    });

    it('has the contract shape', async () => {
      const l = (await api(app).get(`/api/listings/${ids[2]}`).expect(200)).body;
      for (const k of [
        'id',
        'event_id',
        'broker_id',
        'status',
        'quantity',
        'first_seat',
        'display_price',
        'proceed_price',
        'face_value',
        'seat_details',
        'ticket',
        'created_at',
        'updated_at',
      ])
        assert.ok(k in l, k);
      assert.equal(typeof l.id, 'string');
      assert.equal(l.quantity, 3);
      assert.equal(typeof l.display_price.amount, 'string');
    });

    it('answers bad queries with 400 naming the parameter, unknown ids with 404', async () => {
      const bad = await api(app).get('/api/listings?limit=0&status=sold').expect(400);
      assert.match(bad.body.message, /query\.limit/);
      assert.ok(bad.body.errors.some((e: string) => e.startsWith('query.status')));
      await api(app).get('/api/listings?after=abc').expect(400);
      for (const id of ['999999999', 'abc', '1%20or%201=1', '..%2F..%2Fetc']) {
        const res = await api(app).get(`/api/listings/${id}`).expect(404);
        assert.equal(res.body.success, false);
      }
    });
  });

  describe('events', () => {
    it('lists events and shows one with its listings', async () => {
      const list = (await api(app).get('/api/events').expect(200)).body;
      assert.deepEqual(
        list.items.map((e: { id: string }) => e.id),
        ['EV-A', 'EV-B'],
      );
      const one = (await api(app).get('/api/events/EV-A').expect(200)).body;
      assert.equal(one.name, 'Event A');
      assert.equal(one.cancelled, false);
      assert.deepEqual(
        one.listings.map((l: { id: string }) => l.id),
        ids.slice(0, 3),
      );
      await api(app).get('/api/events/nope').expect(404);
    });
  });

  describe('deliveries', () => {
    it('lists and filters the log', async () => {
      const all = (await api(app).get('/api/deliveries?type=ticket.add').expect(200)).body;
      assert.equal(all.items.length, 5);
      assert.ok(
        all.items.every(
          (d: Record<string, unknown>) =>
            d.type === 'ticket.add' && d.outcome === 'applied' && d.version === 'v1' && d.received_at && d.reply,
        ),
      );
      const deletes = (await api(app).get('/api/deliveries?outcome=applied&type=ticket.delete').expect(200)).body;
      assert.equal(deletes.items.length, 1);
      await api(app).get('/api/deliveries?outcome=weird').expect(400);
      await api(app).get('/api/deliveries/abc').expect(404);
    });
  });

  describe('brokers', () => {
    it('creates an account with a hashed password, refuses a taken name and a short password', async () => {
      const res = await api(app).post('/api/brokers').send({ username: 'b@example.org', password: 'long enough pw' }).expect(201);
      assert.match(res.body.id, /^\d+$/);
      assert.equal(res.body.username, 'b@example.org');
      assert.equal('password_hash' in res.body, false);
      await api(app).post('/api/brokers').send({ username: 'b@example.org', password: 'another long pw' }).expect(409);
      const short = await api(app).post('/api/brokers').send({ username: 'c', password: 'short' }).expect(400);
      assert.match(short.body.message, /body\.password/);
      const notJson = await api(app).post('/api/brokers').set('Content-Type', 'application/json').send('{oops').expect(400);
      assert.match(notJson.body.message, /not valid JSON/);
    });
  });

  describe('health', () => {
    it('healthz and readyz answer 200 when the database is migrated', async () => {
      await request(app).get('/healthz').expect(200);
      const ready = await request(app).get('/readyz').expect(200);
      assert.equal(ready.body.migrated, true);
    });

    it('unknown routes are 404 JSON', async () => {
      const res = await request(app).get('/nope').expect(404);
      assert.equal(res.body.success, false);
    });
  });
});
