// The delivery log: retries of absolute-state webhooks answered from the log, holds and
// releases always applied, secrets redacted, replays.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  addListing,
  api,
  type App,
  captureOutput,
  fixture,
  resetDatabase,
  sendWebhook,
  testApp,
  testSql,
  webhook,
  withQuantity,
} from './helpers.js';
import { retryLookup } from '../src/webhooks/deliveries.js';
import { v1Webhooks } from '../src/webhooks/v1/index.js';

describe('delivery log', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });
  const sql = () => testSql();
  const listing = async (id: string) => (await api(app).get(`/api/listings/${id}`).expect(200)).body;

  describe('retries', () => {
    it('an identical absolute-state webhook is answered from the log, not applied again', async () => {
      const id = await addListing(app, withQuantity(5));
      const base = JSON.parse(fixture('ticket.update.json').toString()).data;
      const body = webhook('ticket.update', { ...base, id, ...withQuantity(8) });
      const first = await sendWebhook(app, body).expect(200);
      await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 3 })).expect(200);
      const retry = await sendWebhook(app, body).expect(200);
      assert.deepEqual(retry.body, first.body);
      assert.equal((await listing(id)).quantity, 5, 'the retry did not reset the quantity to 8');
      const rows = await sql()`select outcome, duplicate_of from deliveries where body = ${body} order by id`;
      assert.deepEqual(
        rows.map((r) => r.outcome),
        ['applied', 'duplicate'],
      );
      assert.ok(rows[1]!.duplicate_of);
    });

    it('a retry of a ticket.add returns the same listing id', async () => {
      const body = webhook('ticket.add', { ...JSON.parse(fixture('ticket.add.json').toString()).data, retry_test: 1 });
      const a = await sendWebhook(app, body).expect(200);
      const b = await sendWebhook(app, body).expect(200);
      assert.equal(a.body.listing_id, b.body.listing_id);
      const [n] = await sql()`select count(*)::int as n from listings where data->>'retry_test' = '1'`;
      assert.equal(n!.n, 1);
    });

    it('identical ticket.add webhooks arriving at once create one listing', async () => {
      const body = webhook('ticket.add', { ...JSON.parse(fixture('ticket.add.json').toString()).data, retry_test: 2 });
      const replies = await Promise.all(Array.from({ length: 10 }, () => sendWebhook(app, body).expect(200)));
      assert.equal(new Set(replies.map((r) => r.body.listing_id)).size, 1);
      const [n] = await sql()`select count(*)::int as n from listings where data->>'retry_test' = '2'`;
      assert.equal(n!.n, 1);
    });

    it('after 24 hours the same body is applied again', async () => {
      const id = await addListing(app, withQuantity(5));
      const base = JSON.parse(fixture('ticket.update.json').toString()).data;
      const body = webhook('ticket.update', { ...base, id, ...withQuantity(8) });
      await sendWebhook(app, body).expect(200);
      await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 3 })).expect(200);
      await sql()`update deliveries set received_at = now() - interval '25 hours' where body = ${body}`;
      await sendWebhook(app, body).expect(200);
      assert.equal((await listing(id)).quantity, 8);
    });

    it('identical holds and releases are always applied: both may be real', async () => {
      const id = await addListing(app, withQuantity(10));
      const hold = webhook('ticket.hold', { external_id: id, hold_quantity: 2 });
      await sendWebhook(app, hold).expect(200);
      await sendWebhook(app, hold).expect(200);
      assert.equal((await listing(id)).quantity, 6);
      const release = webhook('ticket.release', { external_id: id, release_quantity: 1 });
      await sendWebhook(app, release).expect(200);
      await sendWebhook(app, release).expect(200);
      assert.equal((await listing(id)).quantity, 8);
    });

    it("a hold's delivery keeps its headers as an object, as every other delivery does", async () => {
      const id = await addListing(app, withQuantity(3));
      await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1 })).expect(200);
      const [row] = await sql()<{ id: string; kind: string }[]>`
        select id::text, jsonb_typeof(headers) as kind from deliveries where type = 'ticket.hold' order by id desc limit 1`;
      assert.equal(row!.kind, 'object');
      const shown = await api(app).get(`/api/deliveries/${row!.id}`).expect(200);
      assert.equal(shown.body.headers['tixstock-version'], 'v1');
    });

    it('migration 0013 turns the headers a hold kept as a JSON string back into the object', async () => {
      const [row] = await sql()<{ id: string }[]>`
        insert into deliveries (version, type, path, headers, body, body_sha256, outcome, status, reply)
        values ('v1', 'ticket.hold', '/webhooks/tixstock', to_jsonb('{"tixstock-version":"v1"}'::text), '\\x7b7d', '\\x00',
                'applied', 200, '{}')
        returning id::text`;
      await sql().unsafe(readFileSync(new URL('../sql/0013_hold_headers_as_objects.sql', import.meta.url), 'utf8'));
      const shown = await api(app).get(`/api/deliveries/${row!.id}`).expect(200);
      assert.deepEqual(shown.body.headers, { 'tixstock-version': 'v1' });
    });

    it('a retry of a rejected webhook is evaluated again', async () => {
      const body = webhook('ticket.update', { ...JSON.parse(fixture('ticket.update.json').toString()).data, id: '888888888' });
      await sendWebhook(app, body).expect(200);
      await sendWebhook(app, body).expect(200);
      const rows = await sql()`select outcome from deliveries where body = ${body}`;
      assert.deepEqual(
        rows.map((r) => r.outcome),
        ['rejected', 'rejected'],
      );
    });
  });

  describe('bodies are stored byte for byte', () => {
    // Large bodies travel to PostgreSQL as text when they are valid UTF-8 (deliveries.ts).
    it('a large UTF-8 body (sent as text) and a large non-UTF-8 body (sent as bytes, refused 400)', async () => {
      const utf8 = webhook('event.update', {
        id: 'E-BIG-UTF8',
        name: 'Caf\u00e9 \u2014 https://x/y',
        description: 'd\u00e9j\u00e0 '.repeat(20_000),
      });
      const latin1 = Buffer.concat([
        Buffer.from('{"data":{"id":"E-BIG-L1","name":"'),
        Buffer.alloc(100_000, 0xe9),
        Buffer.from('"},"meta":{"type":"event.update"}}'),
      ]);
      for (const [body, status] of [
        [utf8, 200],
        [latin1, 400],
      ] as const) {
        assert.ok(body.length > 64 * 1024);
        await sendWebhook(app, body).expect(status);
        const [d] = await sql()`select body from deliveries order by id desc limit 1`;
        assert.equal(Buffer.compare(d!.body, body), 0);
      }
    });
  });

  describe('secrets', () => {
    it('broker passwords never reach the delivery log, the logs or the reply', async () => {
      await api(app).post('/api/brokers').send({ username: 'seller@example.org', password: 'correct horse battery' }).expect(201);
      const output = await captureOutput(async () => {
        const res = await sendWebhook(app, fixture('broker.authenticate.json')).expect(200);
        assert.equal(res.body.success, 'true');
        assert.doesNotMatch(JSON.stringify(res.body), /correct horse/);
      });
      const line = JSON.parse(output.split('\n').find((l) => l.includes('"msg":"webhook"'))!);
      assert.deepEqual(
        { msg: line.msg, type: line.type, version: line.version, outcome: line.outcome, status: line.status },
        { msg: 'webhook', type: 'broker.authenticate', version: 'v1', outcome: 'applied', status: 200 },
      );
      assert.match(line.delivery_id, /^\d+$/);
      assert.equal(typeof line.ms, 'number');
      assert.match(line.broker_id, /^\d+$/);
      assert.doesNotMatch(output, /seller@example.org/, 'no personal data in the log');
      assert.doesNotMatch(output, /correct horse/);
      const [d] = await sql()`select * from deliveries where type = 'broker.authenticate' order by id desc limit 1`;
      assert.equal(d!.redacted, true);
      assert.doesNotMatch(d!.body.toString(), /correct horse/);
      assert.match(d!.body.toString(), /"password":"\[redacted\]"/);
      assert.match(d!.body.toString(), /seller@example.org/);
      const [hashes] = await sql()`select password_hash from brokers where username = 'seller@example.org'`;
      assert.match(hashes!.password_hash, /^scrypt\$/);
      assert.doesNotMatch(hashes!.password_hash, /correct horse/);
      const viaApi = await api(app).get(`/api/deliveries/${d!.id}`).expect(200);
      assert.doesNotMatch(JSON.stringify(viaApi.body), /correct horse/);
    });

    it('a password in a body that is not even valid JSON is redacted too', async () => {
      const broken = Buffer.from('{"data":{"username":"u","password":"hunter2-secret","tixstock');
      await sendWebhook(app, broken).expect(400);
      const [d] = await sql()`select body, redacted from deliveries order by id desc limit 1`;
      assert.equal(d!.redacted, true);
      assert.doesNotMatch(d!.body.toString(), /hunter2/);
    });
  });

  describe('replay', () => {
    it('applies a stored delivery again and links the new log row to it', async () => {
      const id = await addListing(app, withQuantity(6));
      const body = webhook('ticket.hold', { external_id: id, hold_quantity: 2 });
      // As if it had failed on an earlier version of the service:
      const [failed] = await sql()`
        insert into deliveries (version, type, path, headers, body, body_sha256, outcome, status, reply, error)
        values ('v1', 'ticket.hold', '/webhooks/tixstock', ${sql().json({ 'content-type': 'application/json' })}, ${body},
                sha256(${body}), 'failed', 500, '{}', 'boom')
        returning id`;
      const res = await api(app).post(`/api/deliveries/${failed!.id}/replay`).expect(200);
      assert.equal(res.body.replay_of, failed!.id);
      assert.equal(res.body.outcome, 'applied');
      assert.equal(res.body.reply.success, true);
      assert.equal((await listing(id)).quantity, 4);
      const again = await api(app).post(`/api/deliveries/${res.body.id}/replay`).expect(409);
      assert.match(again.body.message, /would apply it twice/);
    });

    it('refuses redacted and unknown deliveries', async () => {
      const [d] = await sql()`select id from deliveries where redacted order by id limit 1`;
      await sql()`update deliveries set outcome = 'failed' where id = ${d!.id}`;
      const res = await api(app).post(`/api/deliveries/${d!.id}/replay`).expect(409);
      assert.match(res.body.message, /redacted/);
      await api(app).post('/api/deliveries/987654321/replay').expect(404);
      await api(app).post('/api/deliveries/..%2f1/replay').expect(404);
    });

    it('an unsupported version stays unsupported when replayed before an upgrade', async () => {
      const id = await addListing(app, withQuantity(6));
      await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1 }), { version: 'v9' }).expect(400);
      const [d] = await sql()`select id from deliveries order by id desc limit 1`;
      const res = await api(app).post(`/api/deliveries/${d!.id}/replay`).expect(200);
      assert.equal(res.body.outcome, 'unsupported');
      assert.equal(res.body.status, 400);
      assert.equal((await listing(id)).quantity, 6);
    });
  });

  it('the retry lookup uses its index even in the generic plan of a prepared statement', async () => {
    const sql = testSql();
    // Many applied deliveries with few distinct bodies (copies of a few webhooks): the
    // planner then expects any body to match often, and walking the primary key looks cheap.
    await sql`
      insert into deliveries (version, type, path, headers, body, body_sha256, outcome, status, reply)
      select 'v1', 'ticket.add', '/', '{}', '\\x00', sha256(int4send(g % 100)), 'applied', 200, '{}'
        from generate_series(1, 20000) g`;
    await sql`analyze deliveries`;
    const { string } = await retryLookup(sql, Buffer.alloc(32), 'v1').describe();
    const plan = await sql.begin(async (tx) => {
      await tx`set local plan_cache_mode = force_generic_plan`;
      await tx.unsafe(`prepare retry_lookup_plan as ${string}`);
      const rows = await tx.unsafe(`explain execute retry_lookup_plan('\\x00'::bytea, 'v1')`);
      await tx.unsafe('deallocate retry_lookup_plan');
      return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
    });
    assert.match(plan, /deliveries_retry_idx/, plan);
    assert.doesNotMatch(plan, /deliveries_pkey/, plan);
  });

  it('holds and releases are left out of the retry index, and only types never looked up as retries are', async () => {
    const sql = testSql();
    await resetDatabase();
    const id = await addListing(app, withQuantity(50));
    for (let i = 0; i < 5; i++) {
      await sendWebhook(app, webhook('ticket.hold', { external_id: id, hold_quantity: 1, n: i })).expect(200);
      await sendWebhook(app, webhook('ticket.release', { external_id: id, release_quantity: 1, n: i })).expect(200);
    }
    await sql`vacuum deliveries`; // sets the index's reltuples to the number of entries it holds
    const [counts] = await sql<[{ applied: number; entries: number }]>`
      select (select count(*)::int from deliveries where outcome = 'applied') as applied,
             (select reltuples::int from pg_class where relname = 'deliveries_retry_idx') as entries`;
    assert.equal(counts.applied, 11);
    assert.equal(counts.entries, 1, 'only the ticket.add is in the retry index');
    // A type left out must be one whose repeats are new changes (a delta, never a retry lookup).
    const [{ def }] = await sql<[{ def: string }]>`select pg_get_indexdef('deliveries_retry_idx'::regclass) as def`;
    const excluded = [...def.matchAll(/'([\w.]+)'::text/g)].map((m) => m[1]!).filter((t) => t !== 'applied');
    assert.deepEqual(excluded.sort(), ['ticket.hold', 'ticket.release'], def);
    for (const type of excluded) {
      const w = v1Webhooks[type]!;
      assert.ok(w.delta && !w.retriesAreDuplicates, `${type} is looked up as a retry, so it must stay in the index`);
    }
  });
});
