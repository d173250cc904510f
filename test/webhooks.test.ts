// Every webhook type from Tixstock's examples, signed over its exact bytes (PHP-style `\/` and
// `\uXXXX` escapes), through real HTTP into a real PostgreSQL, with the exact reply shapes.
import assert from 'node:assert/strict';
import { api, type App, fixture, fixtureFor, resetDatabase, sendWebhook, testApp } from './helpers.js';

describe('webhooks: the examples, end to end', () => {
  let app: App;
  let listingId: string;

  before(() => {
    app = testApp({ DISPLAY_PRICE_MARKUP_PERCENT: '10' }).app;
  });
  // Each test starts from an empty database and sends what it builds on itself, so any one of
  // them runs alone (mocha --grep) or in any order.
  beforeEach(async () => {
    await resetDatabase();
  });

  const listing = async (id = listingId) => (await api(app).get(`/api/listings/${id}`).expect(200)).body;
  const createBody = () =>
    Buffer.from(fixture('ticket.add.json').toString('latin1').replace('"ticket.add"', '"ticket.create"'), 'latin1');
  /** The webhooks a test builds on, sent in this order: each answered 200. */
  const steps: Record<string, () => Promise<unknown>> = {
    add: async () => {
      listingId = (await sendWebhook(app, fixture('ticket.add.json')).expect(200)).body.listing_id;
    },
    create: () => sendWebhook(app, createBody(), { path: '/webhooks/tixstock/ticket-create' }).expect(200),
    update: () => sendWebhook(app, fixtureFor('ticket.update.json', listingId)).expect(200),
    hold: () => sendWebhook(app, fixtureFor('ticket.hold.json', listingId)).expect(200),
  };
  const given = async (...names: (keyof typeof steps)[]) => {
    for (const name of names) await steps[name]!();
  };

  it('ticket.add creates a published listing and replies with its id and our display price', async () => {
    const res = await sendWebhook(app, fixture('ticket.add.json')).expect(200).expect('Content-Type', /json/);
    assert.deepEqual(Object.keys(res.body).sort(), ['display_price', 'listing_id', 'message', 'success']);
    assert.equal(res.body.success, true);
    assert.equal(typeof res.body.listing_id, 'string');
    // 59.00 with a 10 % markup, exact decimal arithmetic
    assert.deepEqual(res.body.display_price, { currency: 'GBP', amount: '64.90' });
    listingId = res.body.listing_id;
    const l = await listing();
    assert.equal(l.id, listingId);
    assert.equal(l.status, 'published');
    assert.equal(l.quantity, 4);
    assert.equal(l.event_id, '7004512');
    assert.equal(l.broker_id, '5512');
    assert.equal(l.first_seat, '21');
    assert.deepEqual(l.display_price, { currency: 'GBP', amount: '64.90' });
    assert.deepEqual(l.proceed_price, { currency: 'GBP', amount: '52.00' });
    assert.deepEqual(l.face_value, { currency: 'GBP', amount: '45.00' });
    assert.equal(l.seat_details.section, 'Balcony Left');
    // fields we do not name are kept, decoded from the PHP escapes
    assert.equal(l.data.restrictions_benefits.other, 'See https://example.org/view/21');
    const event = (await api(app).get('/api/events/7004512').expect(200)).body;
    assert.equal(event.name, 'Northern Lights Orchestra \u2014 Caf\u00e9 Sessions');
  });

  it('ticket.create is an alias of ticket.add', async () => {
    await given('add');
    const res = await sendWebhook(app, createBody(), { path: '/webhooks/tixstock/ticket-create' }).expect(200);
    assert.equal(res.body.success, true);
    assert.notEqual(res.body.listing_id, listingId);
  });

  it('ticket.update applies every field; quantity = quantity_available', async () => {
    await given('add');
    const res = await sendWebhook(app, fixtureFor('ticket.update.json', listingId)).expect(200);
    assert.deepEqual(Object.keys(res.body).sort(), ['listing_id', 'message', 'success']);
    assert.equal(res.body.listing_id, listingId);
    assert.equal(res.body.success, true);
    const l = await listing();
    assert.equal(l.quantity, 6);
    assert.deepEqual(l.display_price, { currency: 'GBP', amount: '67.65' });
  });

  it('ticket.hold takes the held quantity off', async () => {
    await given('add', 'update');
    const res = await sendWebhook(app, fixtureFor('ticket.hold.json', listingId)).expect(200);
    assert.deepEqual(res.body, { listing_id: listingId, success: true, message: res.body.message });
    assert.equal((await listing()).quantity, 4);
  });

  it('ticket.release puts the released quantity back', async () => {
    await given('add', 'update', 'hold');
    const res = await sendWebhook(app, fixtureFor('ticket.release.json', listingId)).expect(200);
    assert.deepEqual(Object.keys(res.body).sort(), ['listing_id', 'message', 'success']);
    assert.equal(res.body.success, true);
    assert.equal((await listing()).quantity, 5);
  });

  it('ticket.sold sets the remaining quantity and first seat', async () => {
    await given('add', 'update', 'hold');
    const res = await sendWebhook(app, fixtureFor('ticket.sold.json', listingId)).expect(200);
    assert.deepEqual(Object.keys(res.body).sort(), ['listing_id', 'message', 'success']);
    assert.equal(res.body.success, true);
    const l = await listing();
    assert.equal(l.quantity, 3);
    assert.equal(l.first_seat, '23');
  });

  it('event.update upserts the event', async () => {
    await given('add');
    const res = await sendWebhook(app, fixture('event.update.json')).expect(200);
    assert.deepEqual(res.body, { event_id: '7004512', success: true, message: res.body.message });
    const event = (await api(app).get('/api/events/7004512').expect(200)).body;
    assert.equal(event.status, 'Active');
    assert.equal(event.cancelled, false);
    assert.equal(event.datetime, '2027-03-14T19:30:00+0000');
  });

  it('broker.authenticate checks the credentials of a broker account (success is a string)', async () => {
    const created = await api(app)
      .post('/api/brokers')
      .send({ username: 'seller@example.org', password: 'correct horse battery' })
      .expect(201);
    const res = await sendWebhook(app, fixture('broker.authenticate.json')).expect(200);
    assert.deepEqual(res.body, { broker_id: created.body.id, success: 'true', message: 'authenticated' });

    const wrong = Buffer.from(fixture('broker.authenticate.json').toString().replace('correct horse battery', 'wrong horse'));
    const bad = await sendWebhook(app, wrong).expect(200);
    assert.equal(bad.body.broker_id, null);
    assert.equal(bad.body.success, 'false');
    assert.match(bad.body.message, /invalid username or password/);
  });

  it('broker.open and broker.closed reply with string success', async () => {
    await given('add');
    const open = await sendWebhook(app, fixture('broker.open.json')).expect(200);
    assert.deepEqual(open.body, { broker_id: '5512', success: 'true' });
    const closed = await sendWebhook(app, fixture('broker.closed.json')).expect(200);
    assert.equal(closed.body.broker_id, '5512');
    assert.equal(closed.body.success, 'true');
    assert.equal(typeof closed.body.message, 'string');
  });

  it('ticket.delete tombstones the listing', async () => {
    await given('add');
    const res = await sendWebhook(app, fixtureFor('ticket.delete.json', listingId)).expect(200);
    assert.deepEqual(Object.keys(res.body).sort(), ['listing_id', 'message', 'success']);
    assert.equal(res.body.success, true);
    const l = await listing();
    assert.equal(l.status, 'deleted');
    assert.equal(l.quantity, 0);
  });

  it('event.cancel marks the event cancelled and deletes all of its listings', async () => {
    await given('add', 'create');
    const res = await sendWebhook(app, fixture('event.cancel.json')).expect(200);
    assert.equal(res.body.event_found, true);
    assert.equal('success' in res.body, false);
    const ids = Object.keys(res.body.listings);
    assert.equal(ids.length, 2);
    assert.ok(ids.includes(listingId));
    assert.ok(Object.values(res.body.listings).every((v) => v === true));
    const event = (await api(app).get('/api/events/7004512').expect(200)).body;
    assert.equal(event.cancelled, true);
    assert.ok(event.listings.every((l: { status: string }) => l.status === 'deleted'));
  });

  it('event.cancel of an unknown event answers event_found false', async () => {
    const body = Buffer.from(fixture('event.cancel.json').toString().replace('"7004512"', '"999"'));
    const res = await sendWebhook(app, body).expect(200);
    assert.deepEqual(res.body, { event_found: false });
  });

  it('every delivery is in the log with its outcome and reply', async () => {
    await given('add', 'create', 'update', 'hold');
    await api(app).post('/api/brokers').send({ username: 'seller@example.org', password: 'correct horse battery' }).expect(201);
    for (const body of [
      fixtureFor('ticket.release.json', listingId),
      fixtureFor('ticket.sold.json', listingId),
      fixture('event.update.json'),
      fixture('broker.authenticate.json'),
      fixture('broker.open.json'),
      fixture('broker.closed.json'),
      fixtureFor('ticket.delete.json', listingId),
      fixture('event.cancel.json'),
    ]) {
      await sendWebhook(app, body).expect(200);
    }
    const res = await api(app).get('/api/deliveries?limit=100').expect(200);
    const types = res.body.items.map((d: { type: string }) => d.type);
    for (const t of [
      'ticket.add',
      'ticket.create',
      'ticket.update',
      'ticket.hold',
      'ticket.release',
      'ticket.sold',
      'event.update',
      'event.cancel',
      'broker.authenticate',
      'broker.open',
      'broker.closed',
      'ticket.delete',
    ]) {
      assert.ok(types.includes(t), `${t} logged`);
    }
    assert.ok(res.body.items.every((d: { outcome: string }) => ['applied', 'rejected'].includes(d.outcome)));
    const add = res.body.items.find((d: { type: string }) => d.type === 'ticket.add');
    const one = (await api(app).get(`/api/deliveries/${add.id}`).expect(200)).body;
    assert.equal(one.body, fixture('ticket.add.json').toString('utf8'), 'raw bytes kept as received');
    assert.equal(one.headers['x-tixstock-signature'], undefined);
    assert.equal(one.reply.listing_id, listingId);
  });
});
