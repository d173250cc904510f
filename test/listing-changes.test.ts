// ticket.update cannot move a listing to another broker, nor into a cancelled event; a hold or
// release that falls short says so in its reply and its ledger row.
import assert from 'node:assert/strict';
import { addListing, api, type App, fixture, resetDatabase, sendWebhook, testApp, webhook, withQuantity } from './helpers.js';

describe('listing changes', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });
  const listing = async (id: string) => (await api(app).get(`/api/listings/${id}`).expect(200)).body;
  const update = (id: string, fields: Record<string, unknown>) =>
    sendWebhook(
      app,
      webhook('ticket.update', { ...JSON.parse(fixture('ticket.update.json').toString()).data, id, ...fields }),
    ).expect(200);

  describe('owner changes', () => {
    it("a closed broker's listing is not updated by naming another broker", async () => {
      const id = await addListing(app, { ...withQuantity(5), broker_id: 'B-OWNER' });
      await sendWebhook(app, webhook('broker.closed', { broker_id: 'B-OWNER' })).expect(200);
      const res = await update(id, { broker_id: 'B-OTHER', ...withQuantity(9) });
      assert.equal(res.body.success, false);
      assert.match(res.body.message, /belongs to broker B-OWNER; a ticket.update cannot move it to broker B-OTHER/);
      assert.deepEqual(Object.keys(res.body).sort(), ['errors', 'listing_id', 'message', 'success']);
      const l = await listing(id);
      assert.equal(l.broker_id, 'B-OWNER');
      assert.equal(l.quantity, 5);
    });

    it("an open broker's listing cannot be given to another broker either", async () => {
      const id = await addListing(app, { ...withQuantity(5), broker_id: 'B-KEEP' });
      const res = await update(id, { broker_id: 'B-TAKER' });
      assert.equal(res.body.success, false);
      assert.equal((await listing(id)).broker_id, 'B-KEEP');
      assert.equal((await update(id, { broker_id: 'B-KEEP', ...withQuantity(7) })).body.success, true);
      assert.equal((await listing(id)).quantity, 7);
    });

    it('a live listing is not moved into a cancelled event', async () => {
      const event = JSON.parse(fixture('event.update.json').toString()).data;
      await sendWebhook(app, webhook('event.cancel', { ...event, id: 'E-CANCELLED', status: 'Cancelled' })).expect(200);
      const base = JSON.parse(fixture('ticket.add.json').toString()).data;
      const id = await addListing(app, withQuantity(5));
      const res = await update(id, { event: { ...base.event, id: 'E-CANCELLED' } });
      assert.equal(res.body.success, false);
      assert.match(res.body.message, /event E-CANCELLED is cancelled/);
      const l = await listing(id);
      assert.equal(l.status, 'published');
      assert.equal(l.event_id, base.event.id);
    });
  });

  describe('holds and releases that fall short', () => {
    it('a hold of 5 on 4 left says it held 4 of 5, in the reply and the ledger', async () => {
      const id = await addListing(app, withQuantity(4));
      const res = await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 5 })).expect(200);
      assert.deepEqual(res.body, {
        listing_id: id,
        success: true,
        message: `held 4 of 5 requested on listing ${id}; quantity 4 -> 0`,
      });
      const ledger = (await api(app).get(`/api/listings/${id}/ledger`).expect(200)).body.items;
      assert.deepEqual(
        ledger.map((r: Record<string, unknown>) => [r.reason, r.requested, r.before, r.after, r.short]),
        [
          ['ticket.add', 4, null, 4, false],
          ['ticket.hold', 5, 4, 0, true],
        ],
      );
    });

    it('a release above the ceiling says how many it released; full ones read as before', async () => {
      const id = await addListing(app, withQuantity(4));
      await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 2 })).expect(200);
      const res = await sendWebhook(app, webhook('ticket.release', { external_id: id, release_quantity: 3 })).expect(200);
      assert.equal(res.body.message, `released 2 of 3 requested on listing ${id}; quantity 2 -> 4`);
      const full = await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1 })).expect(200);
      assert.equal(full.body.message, `1 held on listing ${id}; quantity 4 -> 3`);
    });
  });
});
