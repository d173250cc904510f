// POST /api/deliveries/:id/replay applies a stored delivery at most once: a second replay, even
// one sent at the same moment, is answered 409 and applies nothing.
import assert from 'node:assert/strict';
import {
  addListing,
  api,
  type App,
  fixture,
  resetDatabase,
  sendWebhook,
  testApp,
  testSql,
  webhook,
  withQuantity,
} from './helpers.js';

describe('replays', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });
  const sql = () => testSql();
  const listing = async (id: string) => (await api(app).get(`/api/listings/${id}`).expect(200)).body;

  it('a ticket.add refused for a closed broker is replayed once after the broker reopened', async () => {
    await sendWebhook(app, webhook('broker.closed', { broker_id: 'B-REPLAY' })).expect(200);
    const add = webhook('ticket.add', { ...JSON.parse(fixture('ticket.add.json').toString()).data, broker_id: 'B-REPLAY' });
    const refused = await sendWebhook(app, add).expect(200);
    assert.equal(refused.body.success, false);
    const [d] = await sql()`select id from deliveries where body = ${add}`;
    await sendWebhook(app, webhook('broker.open', { broker_id: 'B-REPLAY' })).expect(200);

    const first = await api(app).post(`/api/deliveries/${d!.id}/replay`).expect(200);
    assert.equal(first.body.outcome, 'applied');
    for (let i = 0; i < 2; i++) {
      const again = await api(app).post(`/api/deliveries/${d!.id}/replay`).expect(409);
      assert.match(again.body.message, new RegExp(`replayed already \\(delivery ${first.body.id}\\)`));
    }
    const [n] = await sql()`select count(*)::int as n from listings where broker_id = 'B-REPLAY'`;
    assert.equal(n!.n, 1);
  });

  it('concurrent replays of one hold apply it once', async () => {
    const id = await addListing(app, withQuantity(10));
    const hold = webhook('ticket.hold', { external_id: id, hold_quantity: 2 });
    const [failed] = await sql()`
      insert into deliveries (version, type, path, headers, body, body_sha256, outcome, status, reply, error)
      values ('v1', 'ticket.hold', '/webhooks/tixstock', ${sql().json({ 'content-type': 'application/json' })}, ${hold},
              sha256(${hold}), 'failed', 500, '{}', 'boom')
      returning id`;
    const replies = await Promise.all(Array.from({ length: 6 }, () => api(app).post(`/api/deliveries/${failed!.id}/replay`)));
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 409, 409, 409, 409, 409]);
    assert.equal((await listing(id)).quantity, 8);
    const [n] = await sql()`select count(*)::int as n from deliveries where replay_of = ${failed!.id}`;
    assert.equal(n!.n, 1);
  });

  it('a replay that was refused again can itself be replayed (once)', async () => {
    const body = webhook('ticket.update', { ...JSON.parse(fixture('ticket.update.json').toString()).data, id: '999999991' });
    await sendWebhook(app, body).expect(200);
    const [d] = await sql()`select id from deliveries where body = ${body}`;
    const r1 = await api(app).post(`/api/deliveries/${d!.id}/replay`).expect(200);
    assert.equal(r1.body.outcome, 'rejected');
    const r2 = await api(app).post(`/api/deliveries/${r1.body.id}/replay`).expect(200);
    assert.equal(r2.body.replay_of, r1.body.id);
    await api(app).post(`/api/deliveries/${r1.body.id}/replay`).expect(409);
  });
});
