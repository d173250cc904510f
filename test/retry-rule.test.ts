// Retries of absolute-state webhooks (DESIGN 4 "Duplicates"): a body is a retry only when it
// equals the latest applied delivery for the same listing, event, broker or order within 24 h.
// A -> B -> A is applied, not answered from the log.
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
import { entityRetryLookup, retryLookup } from '../src/webhooks/deliveries.js';

describe('retries are recognised per entity', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });
  const sql = () => testSql();
  const listing = async (id: string) => (await api(app).get(`/api/listings/${id}`).expect(200)).body;
  const outcomes = async (body: Buffer) =>
    (await sql()`select outcome from deliveries where body = ${body} order by id`).map((r) => r.outcome as string);
  const updateBody = (id: string, q: number) =>
    webhook('ticket.update', { ...JSON.parse(fixture('ticket.update.json').toString()).data, id, ...withQuantity(q) });

  it('ticket.update 6 -> 9 -> 6 ends at 6', async () => {
    const id = await addListing(app, withQuantity(5));
    const six = updateBody(id, 6);
    await sendWebhook(app, six).expect(200);
    await sendWebhook(app, updateBody(id, 9)).expect(200);
    const again = await sendWebhook(app, six).expect(200);
    assert.equal(again.body.success, true);
    assert.equal((await listing(id)).quantity, 6);
    assert.deepEqual(await outcomes(six), ['applied', 'applied']);
    // ... and a retry of that last one is a retry.
    await sendWebhook(app, six).expect(200);
    assert.deepEqual(await outcomes(six), ['applied', 'applied', 'duplicate']);
  });

  it('holds in between do not make a retry of an update apply again (they are deltas)', async () => {
    const id = await addListing(app, withQuantity(5));
    const eight = updateBody(id, 8);
    await sendWebhook(app, eight).expect(200);
    await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 3 })).expect(200);
    await sendWebhook(app, eight).expect(200);
    assert.equal((await listing(id)).quantity, 5);
    assert.deepEqual(await outcomes(eight), ['applied', 'duplicate']);
  });

  it('event.update Active -> Postponed -> Active ends Active', async () => {
    const event = JSON.parse(fixture('event.update.json').toString()).data;
    const active = webhook('event.update', { ...event, id: 'E-ABA', status: 'Active' });
    await sendWebhook(app, active).expect(200);
    await sendWebhook(app, webhook('event.update', { ...event, id: 'E-ABA', status: 'Postponed' })).expect(200);
    await sendWebhook(app, active).expect(200);
    assert.equal((await api(app).get('/api/events/E-ABA').expect(200)).body.status, 'Active');
    assert.deepEqual(await outcomes(active), ['applied', 'applied']);
  });

  it('broker.open -> broker.closed -> broker.open ends open', async () => {
    const open = webhook('broker.open', { broker_id: 'B-ABA' });
    await sendWebhook(app, open).expect(200);
    await sendWebhook(app, webhook('broker.closed', { broker_id: 'B-ABA' })).expect(200);
    await sendWebhook(app, open).expect(200);
    const [broker] = await sql()`select closed_at from brokers where id = 'B-ABA'`;
    assert.equal(broker!.closed_at, null);
    assert.deepEqual(await outcomes(open), ['applied', 'applied']);
  });

  it('the same ticket.add after a ticket.delete creates a new listing; its own retry does not', async () => {
    const add = webhook('ticket.add', { ...JSON.parse(fixture('ticket.add.json').toString()).data, aba_test: 1 });
    const first = await sendWebhook(app, add).expect(200);
    await sendWebhook(app, webhook('ticket.delete', { listing_id: first.body.listing_id })).expect(200);
    const second = await sendWebhook(app, add).expect(200);
    assert.equal(second.body.success, true);
    assert.notEqual(second.body.listing_id, first.body.listing_id);
    assert.equal((await listing(second.body.listing_id)).status, 'published');
    const retry = await sendWebhook(app, add).expect(200);
    assert.equal(retry.body.listing_id, second.body.listing_id);
    assert.deepEqual(await outcomes(add), ['applied', 'applied', 'duplicate']);
  });

  it('identical copies arriving at once on two processes apply once', async () => {
    const other = testApp().app; // a second app: its own gate, the same database
    const id = await addListing(app, withQuantity(5));
    await sendWebhook(app, updateBody(id, 6)).expect(200);
    const nine = updateBody(id, 9);
    const add = webhook('ticket.add', { ...JSON.parse(fixture('ticket.add.json').toString()).data, aba_test: 2 });
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => sendWebhook(i % 2 ? app : other, i % 3 ? nine : add).expect(200)),
    );
    assert.deepEqual(
      (await outcomes(nine)).filter((o) => o === 'applied'),
      ['applied'],
    );
    assert.deepEqual(
      (await outcomes(add)).filter((o) => o === 'applied'),
      ['applied'],
    );
    assert.equal(new Set(replies.filter((_, i) => i % 3 === 0).map((r) => r.body.listing_id)).size, 1);
    assert.equal((await listing(id)).quantity, 9);
  });

  describe('the lookups stay cheap', () => {
    before(async () => {
      // A log as it grows: mostly holds and releases (no entity, few distinct bodies), and
      // updates of many listings, each listing's latest one recorded.
      await sql()`
        insert into deliveries (version, type, path, headers, body, body_sha256, outcome, status, reply, entity)
        select 'v1', case when g % 10 = 0 then 'ticket.update' else 'ticket.hold' end, '/', '{}', '\\x00',
               sha256(int4send(g % 100)), 'applied', 200, '{}', case when g % 10 = 0 then 'listing:' || (g / 10) end
          from generate_series(1, 20000) g`;
      await sql()`insert into delivery_entities (entity, delivery_id) select entity, max(id) from deliveries where entity is not null group by entity on conflict (entity) do nothing`;
      await sql()`analyze delivery_entities`;
      await sql()`analyze deliveries`;
    });

    async function genericPlan(query: { describe(): Promise<{ string: string }> }, args: string): Promise<string> {
      const { string } = await query.describe();
      return sql().begin(async (tx) => {
        await tx`set local plan_cache_mode = force_generic_plan`;
        await tx.unsafe(`prepare lookup_plan as ${string}`);
        const rows = await tx.unsafe(`explain execute lookup_plan(${args})`);
        await tx.unsafe('deallocate lookup_plan');
        return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
      });
    }

    it('the latest delivery of an entity is found by primary keys, even in a generic plan', async () => {
      const plan = await genericPlan(
        entityRetryLookup(sql(), 'listing:7', Buffer.alloc(32), 'v1'),
        `'listing:7', '\\x00'::bytea, 'v1'`,
      );
      assert.match(plan, /Index Scan using delivery_entities_pkey/, plan);
      assert.match(plan, /Index Scan using deliveries_pkey/, plan);
      assert.doesNotMatch(plan, /Seq Scan|Backward/, plan);
    });

    it('a ticket.add retry is found by its body, then checked against its listing, both by index', async () => {
      const plan = await genericPlan(retryLookup(sql(), Buffer.alloc(32), 'v1'), `'\\x00'::bytea, 'v1'`);
      assert.match(plan, /deliveries_retry_idx/, plan);
      assert.match(plan, /delivery_entities_pkey/, plan);
      assert.doesNotMatch(plan, /Seq Scan|deliveries_pkey/, plan);
    });
  });
});
