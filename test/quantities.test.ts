// Quantity rules (DESIGN.md section 4): never negative, a release never lifts above the last
// absolute quantity, ticket.sold sets, every change in the ledger, tombstones refuse changes,
// a closed broker's new listings are refused.
import assert from 'node:assert/strict';
import { addListing, api, type App, fixture, resetDatabase, sendWebhook, testApp, webhook, withQuantity } from './helpers.js';

describe('quantities and listing states', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });

  const hold = (id: string, n: number) =>
    sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: n })).expect(200);
  const release = (id: string, n: number, field = 'release_quantity') =>
    sendWebhook(app, webhook('ticket.release', { external_id: id, [field]: n })).expect(200);
  const sold = (id: string, quantity: number, first_seat: unknown = 30) =>
    sendWebhook(app, webhook('ticket.sold', { listing_id: id, sold_quantity: 1, quantity, first_seat })).expect(200);
  const update = (id: string, q: number) => {
    const base = JSON.parse(fixture('ticket.update.json').toString()).data;
    return sendWebhook(app, webhook('ticket.update', { ...base, id, ...withQuantity(q) })).expect(200);
  };
  const listing = async (id: string) => (await api(app).get(`/api/listings/${id}`).expect(200)).body;
  const ledger = async (id: string) => (await api(app).get(`/api/listings/${id}/ledger`).expect(200)).body.items;

  it('a hold never takes the quantity below 0', async () => {
    const id = await addListing(app, withQuantity(3));
    const res = await hold(id, 5);
    assert.equal(res.body.success, true);
    assert.equal((await listing(id)).quantity, 0);
  });

  it('a release never lifts the quantity above the last absolute quantity', async () => {
    const id = await addListing(app, withQuantity(4));
    await hold(id, 3);
    await release(id, 10);
    assert.equal((await listing(id)).quantity, 4);
    await hold(id, 2);
    await release(id, 1, 'hold_quantity'); // the docs' table names the field hold_quantity
    assert.equal((await listing(id)).quantity, 3);
  });

  it('ticket.sold sets quantity and first seat, and becomes the new ceiling for releases', async () => {
    const id = await addListing(app, withQuantity(10));
    await hold(id, 4);
    await sold(id, 2, '31');
    let l = await listing(id);
    assert.equal(l.quantity, 2);
    assert.equal(l.first_seat, '31');
    await release(id, 5);
    l = await listing(id);
    assert.equal(l.quantity, 2, 'release capped by the sold quantity');
  });

  it('ticket.update sets quantity = quantity_available and a new ceiling', async () => {
    const id = await addListing(app, withQuantity(2));
    await update(id, 8);
    await hold(id, 3);
    await release(id, 10);
    assert.equal((await listing(id)).quantity, 8);
  });

  it('every change of quantity is in the ledger with its delivery', async () => {
    const id = await addListing(app, withQuantity(5));
    await hold(id, 2);
    await release(id, 1);
    await sold(id, 1);
    await hold(id, 4);
    const rows = await ledger(id);
    assert.deepEqual(
      rows.map((r: { reason: string; requested: number; before: number | null; after: number }) => [
        r.reason,
        r.requested,
        r.before,
        r.after,
      ]),
      [
        ['ticket.add', 5, null, 5],
        ['ticket.hold', 2, 5, 3],
        ['ticket.release', 1, 3, 4],
        ['ticket.sold', 1, 4, 1],
        ['ticket.hold', 4, 1, 0],
      ],
    );
    for (const r of rows) assert.match(r.delivery_id, /^\d+$/);
  });

  it('a deleted listing is a tombstone: later update, hold, release, sold are refused and change nothing', async () => {
    const id = await addListing(app, withQuantity(5));
    await sendWebhook(app, webhook('ticket.delete', { listing_id: id })).expect(200);
    for (const res of [await hold(id, 1), await release(id, 1), await sold(id, 3), await update(id, 9)]) {
      assert.equal(res.body.success, false);
      assert.equal(res.body.listing_id, id);
      assert.match(res.body.message, /is deleted/);
      assert.deepEqual(res.body.errors, [res.body.message]);
    }
    const l = await listing(id);
    assert.equal(l.status, 'deleted');
    assert.equal(l.quantity, 0);
    assert.deepEqual(
      (await ledger(id)).map((r: { reason: string }) => r.reason),
      ['ticket.add', 'ticket.delete'],
    );
    const again = await sendWebhook(app, webhook('ticket.delete', { listing_id: id, note: 'again' })).expect(200);
    assert.equal(again.body.success, true);
    assert.match(again.body.message, /already deleted/);
  });

  it('unknown listings are business failures (200, success false)', async () => {
    for (const unknown of ['999999999', 'not-ours', '0']) {
      const res = await hold(unknown, 1);
      assert.deepEqual(res.body, {
        listing_id: unknown,
        success: false,
        message: `listing ${unknown} not found`,
        errors: [`listing ${unknown} not found`],
      });
    }
    const upd = await update('123456789', 1);
    assert.equal(upd.body.success, false);
    const del = await sendWebhook(app, webhook('ticket.delete', { listing_id: '123456789' })).expect(200);
    assert.equal(del.body.success, false);
  });

  it('a closed broker: new listings and updates are refused; reopening allows them again', async () => {
    const id = await addListing(app, { ...withQuantity(2), broker_id: '7777' });
    await sendWebhook(app, webhook('broker.closed', { broker_id: '7777' })).expect(200);
    const base = JSON.parse(fixture('ticket.add.json').toString()).data;
    const add = await sendWebhook(app, webhook('ticket.add', { ...base, broker_id: '7777' })).expect(200);
    assert.equal(add.body.success, false);
    assert.equal(add.body.listing_id, null);
    assert.match(add.body.message, /broker 7777 is closed/);
    const upd = await sendWebhook(app, webhook('ticket.update', { ...base, id, broker_id: '7777', ...withQuantity(9) })).expect(
      200,
    );
    assert.equal(upd.body.success, false);
    assert.equal((await listing(id)).quantity, 2);
    // holds still apply: they only ever lower what we sell
    await hold(id, 1);
    assert.equal((await listing(id)).quantity, 1);
    await sendWebhook(app, webhook('broker.open', { broker_id: '7777' })).expect(200);
    const again = await sendWebhook(app, webhook('ticket.add', { ...base, broker_id: '7777', note: 'reopened' })).expect(200);
    assert.equal(again.body.success, true);
  });

  it('a listing for a cancelled event is refused', async () => {
    await sendWebhook(app, webhook('event.cancel', { id: 'E-GONE', name: 'Gone' })).expect(200);
    const base = JSON.parse(fixture('ticket.add.json').toString()).data;
    const res = await sendWebhook(
      app,
      webhook('ticket.add', { ...base, event: { id: 'E-GONE', name: 'Gone', status: 'Active' } }),
    ).expect(200);
    assert.equal(res.body.success, false);
    assert.match(res.body.message, /event E-GONE is cancelled/);
  });

  it('a large string in a webhook other than a fulfilment is kept as an ordinary string', async () => {
    const id = await addListing(app, withQuantity(5));
    const base = JSON.parse(fixture('ticket.update.json').toString()).data;
    const note = 'a/b\\"c'.repeat(20_000); // 160 KB with characters JSON escapes
    await sendWebhook(app, webhook('ticket.update', { ...base, id, ...withQuantity(5), note })).expect(200);
    const stored = (await api(app).get(`/api/listings/${id}`).expect(200)).body;
    assert.equal(stored.data.note, note);
  });
});
