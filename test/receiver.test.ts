// The receiver's status codes (DESIGN.md section 3) and bad input of every kind: a clear JSON
// error, the right outcome in the delivery log, and no change to the inventory.
import assert from 'node:assert/strict';
import { sign } from '../src/webhooks/signature.js';
import {
  addListing,
  api,
  type App,
  fixture,
  fixtureFor,
  resetDatabase,
  sendWebhook,
  testApp,
  testSql,
  TOKEN,
  webhook,
} from './helpers.js';

describe('receiver: status codes and bad input', () => {
  let app: App;
  let listingId: string;

  before(async () => {
    app = testApp({ WEBHOOK_BODY_LIMIT: '64kb' }).app;
    await resetDatabase();
    listingId = await addListing(app);
  });

  const quantity = async () => (await api(app).get(`/api/listings/${listingId}`).expect(200)).body.quantity;
  const deliveryCount = async () => Number((await testSql()`select count(*)::int as n from deliveries`)[0]!.n);
  const lastDelivery = async () => (await testSql()`select * from deliveries order by id desc limit 1`)[0]!;

  function assertJsonError(res: { body: Record<string, unknown> }, pattern: RegExp) {
    assert.equal(res.body.success, false);
    assert.match(String(res.body.message), pattern);
    assert.ok(Array.isArray(res.body.errors) && res.body.errors.length > 0);
  }

  describe('signature', () => {
    const hold = () => fixtureFor('ticket.hold.json', listingId);

    it('missing signature: 401, not logged, nothing applied', async () => {
      const before = await deliveryCount();
      const res = await sendWebhook(app, hold(), { signature: null }).expect(401);
      assertJsonError(res, /X-Tixstock-Signature header is missing/);
      assert.equal(await deliveryCount(), before);
      assert.equal(await quantity(), 4);
    });

    it('malformed signature: 401', async () => {
      const res = await sendWebhook(app, hold(), { signature: 'sha256=abc' }).expect(401);
      assertJsonError(res, /malformed/);
    });

    it('signature made with another key: 401', async () => {
      const res = await sendWebhook(app, hold(), { token: 'not-the-token' }).expect(401);
      assertJsonError(res, /does not match/);
      assert.equal(await quantity(), 4);
    });

    it('signature of other bytes (body re-serialized without the PHP escapes): 401', async () => {
      const body = fixture('ticket.add.json');
      const reserialized = JSON.stringify(JSON.parse(body.toString()));
      assert.notEqual(reserialized, body.toString());
      const res = await sendWebhook(app, body, { signature: sign(reserialized, TOKEN) }).expect(401);
      assertJsonError(res, /does not match/);
    });

    it('uppercase hex is accepted', async () => {
      const body = webhook('event.update', { id: 'E-UPPER', name: 'Upper' });
      await sendWebhook(app, body, { signature: sign(body, TOKEN).toUpperCase() }).expect(200);
    });

    it('every comma-separated token is accepted (rotation)', async () => {
      const rotated = testApp({ TIXSTOCK_BEARER_TOKEN: ` old-token , ${TOKEN}` }).app;
      const body = webhook('event.update', { id: 'E-ROT', name: 'Rotation' });
      await sendWebhook(rotated, body, { token: 'old-token' }).expect(200);
      await sendWebhook(rotated, webhook('event.update', { id: 'E-ROT2', name: 'Rotation' }), { token: TOKEN }).expect(200);
      await sendWebhook(rotated, body, { token: 'another' }).expect(401);
    });

    it('no token configured: 503, nothing logged', async () => {
      const unconfigured = testApp({ TIXSTOCK_BEARER_TOKEN: '' }).app;
      const res = await sendWebhook(unconfigured, hold()).expect(503);
      assertJsonError(res, /TIXSTOCK_BEARER_TOKEN is not configured/);
    });
  });

  it('body over WEBHOOK_BODY_LIMIT: 413, not logged', async () => {
    const before = await deliveryCount();
    const big = webhook('event.update', { id: 'E-BIG', name: 'x'.repeat(70_000) });
    const res = await sendWebhook(app, big).expect(413);
    assertJsonError(res, /larger than WEBHOOK_BODY_LIMIT/);
    assert.equal(await deliveryCount(), before);
  });

  describe('signed but bad bodies: 400 (or 415), logged, nothing applied', () => {
    const cases: [string, Buffer | string, RegExp, string][] = [
      ['empty body', '', /body is empty/, 'invalid'],
      ['truncated JSON', fixture('ticket.hold.json').subarray(0, 30), /not valid JSON/, 'invalid'],
      ['not JSON', 'hello', /not valid JSON/, 'invalid'],
      ['JSON but no envelope', '{"hold_quantity": 2}', /not a Tixstock webhook/, 'invalid'],
      ['data is not an object', '{"data": [1], "meta": {"type": "ticket.hold"}}', /not a Tixstock webhook/, 'invalid'],
      [
        'unknown meta.type',
        '{"data": {}, "meta": {"type": "ticket.teleport"}}',
        /unknown webhook type "ticket.teleport"/,
        'unsupported',
      ],
      ['missing field', '{"data": {"external_id": "1"}, "meta": {"type": "ticket.hold"}}', /data\.hold_quantity/, 'invalid'],
      [
        'wrong type',
        '{"data": {"external_id": "1", "hold_quantity": "two"}, "meta": {"type": "ticket.hold"}}',
        /hold_quantity: must be a whole number/,
        'invalid',
      ],
      [
        'negative quantity',
        '{"data": {"external_id": "1", "hold_quantity": -2}, "meta": {"type": "ticket.hold"}}',
        /hold_quantity: must be at least 1/,
        'invalid',
      ],
      [
        'huge quantity',
        '{"data": {"external_id": "1", "hold_quantity": 1e12}, "meta": {"type": "ticket.hold"}}',
        /hold_quantity/,
        'invalid',
      ],
      [
        'fractional quantity',
        '{"data": {"external_id": "1", "hold_quantity": 1.5}, "meta": {"type": "ticket.hold"}}',
        /hold_quantity: must be a whole number/,
        'invalid',
      ],
      [
        'release without a quantity',
        '{"data": {"external_id": "1"}, "meta": {"type": "ticket.release"}}',
        /release_quantity/,
        'invalid',
      ],
      [
        'bad money',
        JSON.stringify({
          data: { ...JSON.parse(fixture('ticket.add.json').toString()).data, display_price: { currency: 'GBP', amount: '-5' } },
          meta: { type: 'ticket.add' },
        }),
        /display_price\.amount/,
        'invalid',
      ],
      [
        'bad boolean',
        JSON.stringify({
          data: { ...JSON.parse(fixture('ticket.add.json').toString()).data, published: 'maybe' },
          meta: { type: 'ticket.add' },
        }),
        /published: expected a boolean/,
        'invalid',
      ],
      [
        'NUL character PostgreSQL cannot store',
        '{"data": {"id": "E-NUL", "name": "a\\u0000b"}, "meta": {"type": "event.update"}}',
        /cannot be stored/,
        'invalid',
      ],
    ];
    for (const [name, body, message, outcome] of cases) {
      it(name, async () => {
        const res = await sendWebhook(app, body).expect(400);
        assertJsonError(res, message);
        const d = await lastDelivery();
        assert.equal(d.outcome, outcome);
        assert.equal(d.status, 400);
        assert.equal(Buffer.compare(d.body, Buffer.from(body)), 0);
        assert.equal(await quantity(), 4);
      });
    }

    it('unsupported Tixstock-Version: 400 unsupported, replayable later', async () => {
      const res = await sendWebhook(app, fixtureFor('ticket.hold.json', listingId), { version: 'v2' }).expect(400);
      assertJsonError(res, /Tixstock-Version "v2" is not supported \(supported: v1\)/);
      const d = await lastDelivery();
      assert.equal(d.outcome, 'unsupported');
      assert.equal(d.type, 'ticket.hold');
      assert.equal(await quantity(), 4);
    });

    it('wrong content type: 415', async () => {
      const res = await sendWebhook(app, fixtureFor('ticket.hold.json', listingId), { contentType: 'text/plain' }).expect(415);
      assertJsonError(res, /Content-Type must be application\/json/);
      assert.equal((await lastDelivery()).outcome, 'invalid');
      assert.equal(await quantity(), 4);
    });
  });

  describe('versions and paths', () => {
    it('a missing Tixstock-Version header means v1; any spelling of the header works', async () => {
      await sendWebhook(app, webhook('event.update', { id: 'E-NOVER', name: 'n' }), { version: null }).expect(200);
      const body = webhook('event.update', { id: 'E-CASE', name: 'n' });
      const { default: request } = await import('supertest');
      await request(app)
        .post('/webhooks/tixstock')
        .set('Content-Type', 'application/json')
        .set('TixStock-Version', 'V1')
        .set('x-tixstock-signature', sign(body, TOKEN))
        .serialize((b: Buffer) => b as unknown as string)
        .send(body)
        .expect(200);
    });

    it('any path under /webhooks/tixstock/ is the receiver', async () => {
      const res = await sendWebhook(app, webhook('event.update', { id: 'E-PATH', name: 'n' }), {
        path: '/webhooks/tixstock/event-update',
      }).expect(200);
      assert.equal(res.body.event_id, 'E-PATH');
      assert.equal((await lastDelivery()).path, '/webhooks/tixstock/event-update');
    });

    it('loose typing: string booleans, numeric strings, integer seats and ids', async () => {
      const base = JSON.parse(fixture('ticket.add.json').toString()).data;
      const res = await sendWebhook(
        app,
        webhook('ticket.add', {
          ...base,
          broker_id: 5512,
          ticket: { ...base.ticket, general_admission: 1 },
          number_of_tickets_for_sale: { quantity_available: '7', quantity_sold: '0', display_quantity: 7, split_quantity: '0' },
          seat_details: { ...base.seat_details, first_seat: 14 },
          display_price: { currency: 'gbp', amount: 100 },
          published: true,
        }),
      ).expect(200);
      const l = (await api(app).get(`/api/listings/${res.body.listing_id}`).expect(200)).body;
      assert.equal(l.quantity, 7);
      assert.equal(l.first_seat, '14');
      assert.equal(l.broker_id, '5512');
      assert.deepEqual(l.display_price, { currency: 'GBP', amount: '100.00' });
      assert.equal(l.ticket.general_admission, true);
    });
  });
});
