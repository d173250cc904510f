// Bounded storage: a fulfilment's PDF is stored once (its delivery keeps a reference, from which
// a replay rebuilds the exact bytes received), old bodies are dropped by the retention run (rows,
// outcomes and replies stay), and GET /api/stats and the support page show what is used.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { loadConfig } from '../src/config.js';
import { mailJobHandlers } from '../src/support/mail-jobs.js';
import { startJobWorker, type JobWorker } from '../src/jobs/worker.js';
import { retentionTask, runRetention } from '../src/webhooks/retention.js';
import { TICKET_REFERENCE_PREFIX } from '../src/webhooks/stored-body.js';
import { addListing, api, captureOutput, resetDatabase, sendWebhook, testApp, webhook, withQuantity } from './helpers.js';
import { fulfilment, largePdf, makePdf, sha256, waitUntil, type TestApp } from './tickets-helpers.js';

const MB = 1024 * 1024;

describe('storage', () => {
  let t: TestApp;
  before(() => (t = testApp()));
  beforeEach(() => resetDatabase());

  const sizes = async () =>
    (
      await t.sql<{ db: number; deliveries: number; tickets: number }[]>`
    select pg_database_size(current_database())::float8 as db, pg_total_relation_size('deliveries')::float8 as deliveries,
           pg_total_relation_size('tickets')::float8 as tickets`
    )[0]!;
  const lastDelivery = async () =>
    (
      await t.sql`
    select id, outcome, body, body_file, body_bytes, encode(body_sha256, 'hex') as body_sha256, body_dropped_at, reply
      from deliveries order by id desc limit 1`
    )[0]!;

  describe('a ticket PDF is stored once', () => {
    it('a 20 MB fulfilment adds about 20 MB to the database, not its body as well; a retry adds nothing', async function () {
      this.timeout(120_000);
      const pdf = await largePdf(20 * MB);
      const body = fulfilment('eticket', { order_id: 'R-SIZE' }, pdf);
      assert.ok(body.length > 26 * MB, `the webhook is ${body.length} bytes`);
      const before = await sizes();
      const res = await sendWebhook(t.app, body);
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.success, true, res.body.message);
      const after = await sizes();
      const grown = after.db - before.db;
      assert.ok(
        grown < 30 * MB,
        `the database grew by ${(grown / MB).toFixed(1)} MB for a ${(pdf.length / MB).toFixed(1)} MB PDF`,
      );
      assert.ok(grown > pdf.length * 0.9, `the database grew by ${(grown / MB).toFixed(1)} MB: the PDF is stored`);
      assert.ok(after.deliveries - before.deliveries < MB, `deliveries grew by ${after.deliveries - before.deliveries} bytes`);

      const d = await lastDelivery();
      const [ticket] = await t.sql`select id, sha256 from tickets where order_id = 'R-SIZE'`;
      assert.equal(ticket!.sha256, sha256(pdf));
      assert.equal(d.body_bytes, body.length);
      assert.equal(d.body_sha256, createHash('sha256').update(body).digest('hex'), 'the hash is of the bytes received');
      const stored = JSON.parse((d.body as Buffer).toString('utf8'));
      assert.equal(stored.data.file, `${TICKET_REFERENCE_PREFIX}${sha256(pdf)}`);
      assert.equal(stored.data.order_id, 'R-SIZE');
      const fileAt = body.indexOf('"file":"') + '"file":'.length; // its opening quote
      const fileLength = body.indexOf('"', fileAt + 1) - fileAt - 1;
      assert.deepEqual(d.body_file, { at: fileAt, length: fileLength, sha256: sha256(pdf), slashes: 'escaped' });

      const view = (await api(t.app).get(`/api/deliveries/${d.id}`).expect(200)).body;
      assert.equal(view.bytes, body.length);
      assert.ok(view.stored_bytes < 1000, `stored ${view.stored_bytes} bytes`);
      assert.equal(JSON.parse(view.body).data.file, stored.data.file);

      // An exact retry is answered from the log: its row holds the reference too.
      const again = await sendWebhook(t.app, body).expect(200);
      assert.deepEqual(again.body, res.body);
      assert.equal((await lastDelivery()).outcome, 'duplicate');
      assert.ok((await sizes()).deliveries - after.deliveries < MB);
    });

    it('a replay rebuilds the body received byte for byte from the stored ticket and attaches the same ticket', async function () {
      this.timeout(120_000);
      const pdf = await largePdf(3 * MB);
      const body = fulfilment('eticket', { order_id: 'R-REPLAY' }, pdf); // PHP style: "\/"
      await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-OTHER' }, pdf)).expect(200); // the same bytes, an older ticket
      await sendWebhook(t.app, body).expect(200);
      const d = await lastDelivery();
      assert.ok(d.body_file, 'stored with a reference');
      const [ticket] = await t.sql`select id from tickets where order_id = 'R-REPLAY'`;
      // As if it had failed on an earlier version of the service (applied ones are not replayed):
      await t.sql`update deliveries set outcome = 'failed' where id = ${d.id}`;
      const res = await api(t.app).post(`/api/deliveries/${d.id}/replay`).expect(200);
      assert.equal(res.body.outcome, 'applied', JSON.stringify(res.body));
      assert.equal(res.body.body_rebuilt_from_ticket, ticket!.id);
      assert.equal(res.body.reply.message, `order R-REPLAY: this PDF is already attached as ticket ${ticket!.id}`);
      assert.equal((await t.sql`select count(*)::int as n from tickets where order_id = 'R-REPLAY'`)[0]!.n, 1);
      const replayed = await lastDelivery();
      assert.equal(replayed.body_sha256, d.body_sha256, 'the replay processed exactly the bytes received');
      assert.ok(replayed.body_file, 'and stored them with the reference again');
    });

    it('keeps unescaped slashes byte for byte, and stores whole a body it could not rebuild exactly', async () => {
      const pdf = await largePdf(100 * 1024); // over 64 KB of base64: stored apart
      const b64 = pdf.toString('base64');
      assert.ok(b64.length > 64 * 1024 && b64.includes('/'));
      const plain = Buffer.from(
        JSON.stringify({
          data: { order_id: 'R-PLAIN', id: '300001', row: 'A', seat: '1', file: b64 },
          meta: { type: 'order.eticket_fulfilment' },
        }),
      );
      await sendWebhook(t.app, plain).expect(200);
      const d = await lastDelivery();
      assert.equal(d.body_file.slashes, 'plain');
      await t.sql`update deliveries set outcome = 'failed' where id = ${d.id}`;
      const res = await api(t.app).post(`/api/deliveries/${d.id}/replay`).expect(200);
      assert.equal(res.body.outcome, 'applied');
      assert.equal((await lastDelivery()).body_sha256, d.body_sha256);

      // Only the first slash escaped: a valid JSON string, but not one a rebuild would write.
      const mixed = Buffer.from(plain.toString('latin1').replace('R-PLAIN', 'R-MIXED').replace('/', '\\/'), 'latin1');
      await sendWebhook(t.app, mixed).expect(200);
      const m = await lastDelivery();
      assert.equal(m.outcome, 'applied');
      assert.equal(m.body_file, null);
      assert.ok((m.body as Buffer).equals(mixed));
    });

    it('a refused file is kept whole (for support and a replay after a fix) until retention drops it', async () => {
      const notPdf = Buffer.alloc(200 * 1024, 'not a pdf ').toString('base64');
      const res = await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-BAD', file: notPdf })).expect(200);
      assert.equal(res.body.success, false);
      const d = await lastDelivery();
      assert.equal(d.outcome, 'rejected');
      assert.equal(d.body_file, null);
      assert.ok((d.body as Buffer).length > notPdf.length);
    });
  });

  describe('retention', () => {
    async function someDeliveries() {
      const listing = await addListing(t.app, withQuantity(6));
      await sendWebhook(t.app, webhook('ticket.hold', { external_id: listing, hold_quantity: 1 })).expect(200);
      await sendWebhook(
        t.app,
        fulfilment('eticket', { order_id: 'R-OLD', file: Buffer.alloc(100_000, 'x').toString('base64') }),
      ).expect(200);
      await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-OLD' }, await makePdf('old'))).expect(200);
      await sendWebhook(t.app, webhook('ticket.hold', { external_id: listing, hold_quantity: 1 })).expect(200);
      return t.sql<{ id: string; outcome: string; reply: unknown; bytes: number }[]>`
        select id, outcome, reply, octet_length(body) as bytes from deliveries order by id`;
    }

    it('drops bodies older than DELIVERY_BODY_RETENTION in batches; the rows, outcomes and replies stay', async () => {
      const all = await someDeliveries();
      assert.equal(all.length, 5);
      const old = all.slice(0, 4);
      await t.sql`update deliveries set received_at = now() - interval '31 days' where id in ${t.sql(old.map((d) => d.id))}`;

      const result = await runRetention(t.sql, t.config, { batchRows: 2, pauseMs: 0 });
      assert.equal(result.rows, 4);
      assert.equal(
        result.bytes,
        old.reduce((n, d) => n + d.bytes, 0),
      );
      assert.ok(result.batches >= 2, `${result.batches} batches`);
      const rows = await t.sql<
        {
          id: string;
          outcome: string;
          reply: unknown;
          body: Buffer | null;
          body_bytes: number | null;
          body_dropped_at: Date | null;
        }[]
      >`
        select id, outcome, reply, body, body_bytes, body_dropped_at from deliveries order by id`;
      assert.equal(rows.length, 5, 'no row is deleted');
      for (const [i, row] of rows.entries()) {
        assert.equal(row.outcome, all[i]!.outcome);
        assert.deepEqual(row.reply, all[i]!.reply);
        if (i < 4) {
          assert.equal(row.body, null);
          assert.ok(row.body_dropped_at);
          assert.ok(row.body_bytes! >= all[i]!.bytes, 'the size received is kept');
        } else {
          assert.ok(row.body && row.body.length === all[i]!.bytes, 'a recent body is kept');
        }
      }
      const listed = (await api(t.app).get('/api/deliveries').expect(200)).body.items;
      assert.equal(listed[0].stored_bytes, null);
      assert.ok(listed[0].bytes > 0);
      assert.ok(listed[0].body_dropped_at);

      const [run] = await t.sql`select rows, bytes::float8 as bytes, batches, up_to_id, finished_at from retention_runs`;
      assert.deepEqual(
        { rows: run!.rows, bytes: run!.bytes, batches: run!.batches },
        { rows: 4, bytes: result.bytes, batches: result.batches },
      );
      assert.equal(run!.up_to_id, old[3]!.id, 'the next run starts after the last old delivery');
      assert.ok(run!.finished_at);

      // A replay needs the body: refused, clearly, once it is gone.
      await t.sql`update deliveries set outcome = 'failed' where id = ${old[1]!.id}`;
      const replay = await api(t.app).post(`/api/deliveries/${old[1]!.id}/replay`).expect(409);
      assert.match(replay.body.message, /body was dropped on .* \(DELIVERY_BODY_RETENTION\)/);

      // Nothing left to drop: the next run frees nothing, and the recent body ages in turn.
      assert.equal((await runRetention(t.sql, t.config)).rows, 0);
      await t.sql`update deliveries set received_at = now() - interval '31 days' where id = ${all[4]!.id}`;
      const later = await runRetention(t.sql, t.config);
      assert.deepEqual({ rows: later.rows, bytes: later.bytes }, { rows: 1, bytes: all[4]!.bytes });
    });

    it('is not held up by webhooks in flight: it locks only the old rows it changes', async () => {
      const all = await someDeliveries();
      await t.sql`update deliveries set received_at = now() - interval '31 days' where id <> ${all[4]!.id}`;
      // A transaction holding the newest delivery's row, as a webhook being applied would.
      const busy = await t.sql.reserve();
      try {
        await busy`begin`;
        await busy`select id from deliveries where id = ${all[4]!.id} for update`;
        await busy`set local statement_timeout = '20s'`;
        const result = await runRetention(t.sql, t.config);
        assert.equal(result.rows, 4);
      } finally {
        await busy`rollback`;
        busy.release();
      }
    });

    it('keeps every body with DELIVERY_BODY_RETENTION=0, and keeps a younger one', async () => {
      await someDeliveries();
      await t.sql`update deliveries set received_at = now() - interval '2 days'`;
      const never = await runRetention(t.sql, { ...t.config, ...loadConfig({ DELIVERY_BODY_RETENTION: '0' }) });
      assert.equal(never.rows, 0);
      const threeDays = await runRetention(t.sql, {
        ...t.config,
        DELIVERY_BODY_RETENTION: loadConfig({ DELIVERY_BODY_RETENTION: '3d' }).DELIVERY_BODY_RETENTION,
      });
      assert.equal(threeDays.rows, 0);
      assert.equal((await t.sql`select count(*)::int as n from deliveries where body is null`)[0]!.n, 0);
      const oneDay = await runRetention(t.sql, {
        ...t.config,
        DELIVERY_BODY_RETENTION: loadConfig({ DELIVERY_BODY_RETENTION: '24h' }).DELIVERY_BODY_RETENTION,
      });
      assert.equal(oneDay.rows, 5);
    });

    it('runs from the job worker, once per period across workers, and warns when DATABASE_SIZE_LIMIT is 80% used', async () => {
      const config = { ...t.config, DATABASE_SIZE_LIMIT: 1 * MB }; // any test database is larger
      const workers: JobWorker[] = [];
      const output = await captureOutput(async () => {
        for (let i = 0; i < 2; i++) {
          workers.push(
            startJobWorker({
              sql: t.sql,
              config,
              pollMs: 50,
              handlers: mailJobHandlers,
              periodic: [{ ...retentionTask, firstAfterMs: 10 }],
            }),
          );
        }
        await waitUntil(
          'a finished retention run',
          async () => (await t.sql`select 1 from retention_runs where finished_at is not null`).length > 0,
        );
        await new Promise((r) => setTimeout(r, 300));
        await Promise.all(workers.map((w) => w.stop(2000)));
      });
      assert.equal((await t.sql`select count(*)::int as n from retention_runs`)[0]!.n, 1, 'the second worker skipped its turn');
      const warning = output.split('\n').filter((l) => l.includes('database storage is 80% used'));
      assert.equal(warning.length, 1, output);
      const line = JSON.parse(warning[0]!);
      assert.equal(line.level, 'warn');
      assert.equal(line.limit_bytes, MB);
      assert.ok(line.used_percent >= 80);

      const quiet = await captureOutput(() => runRetention(t.sql, { ...t.config, DATABASE_SIZE_LIMIT: 100 * 1024 * MB }));
      assert.doesNotMatch(quiet, /80% used/);
    });
  });

  it('reads DELIVERY_BODY_RETENTION and DATABASE_SIZE_LIMIT, and names a wrong value', () => {
    const env = (e: Record<string, string>) => loadConfig(e);
    assert.equal(env({}).DELIVERY_BODY_RETENTION, 30 * 86_400_000);
    assert.equal(env({}).DATABASE_SIZE_LIMIT, undefined);
    assert.equal(env({ DELIVERY_BODY_RETENTION: '24h' }).DELIVERY_BODY_RETENTION, 86_400_000);
    assert.equal(env({ DELIVERY_BODY_RETENTION: '90m' }).DELIVERY_BODY_RETENTION, 90 * 60_000);
    assert.equal(env({ DELIVERY_BODY_RETENTION: '0' }).DELIVERY_BODY_RETENTION, 0);
    assert.equal(env({ DATABASE_SIZE_LIMIT: '1gb' }).DATABASE_SIZE_LIMIT, 1024 * MB);
    assert.equal(env({ DATABASE_SIZE_LIMIT: '' }).DATABASE_SIZE_LIMIT, undefined);
    for (const wrong of ['30', '2w', '5m', '-1d', 'never']) {
      assert.throws(
        () => env({ DELIVERY_BODY_RETENTION: wrong }),
        /DELIVERY_BODY_RETENTION: must be a duration such as 30d/,
        wrong,
      );
    }
    assert.throws(() => env({ DATABASE_SIZE_LIMIT: 'lots' }), /DATABASE_SIZE_LIMIT: must be a size such as 1gb/);
  });

  describe('GET /api/stats and the support page', () => {
    it('show the database size, the largest tables and what retention last freed', async () => {
      await request(t.app).get('/api/stats').expect(401);
      await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-STATS' }, await makePdf('stats'))).expect(200);
      const empty = (await api(t.app).get('/api/stats').expect(200)).body;
      assert.equal(empty.retention.last_run, null);
      await t.sql`update deliveries set received_at = now() - interval '40 days'`;
      const run = await runRetention(t.sql, t.config);

      const limited = testApp({ DATABASE_SIZE_LIMIT: '1gb' });
      const stats = (await api(limited.app).get('/api/stats').expect(200)).body;
      assert.deepEqual(Object.keys(stats), ['database', 'tables', 'retention']);
      assert.ok(stats.database.bytes > 0);
      assert.equal(stats.database.limit_bytes, 1024 * MB);
      assert.equal(stats.database.used_percent, Math.round((stats.database.bytes / (1024 * MB)) * 1000) / 10);
      assert.equal(stats.database.warning, false);
      const names = stats.tables.map((x: { name: string }) => x.name);
      for (const name of ['deliveries', 'tickets']) assert.ok(names.includes(name), names.join());
      for (const table of stats.tables) {
        assert.deepEqual(Object.keys(table), [
          'name',
          'total_bytes',
          'table_bytes',
          'toast_bytes',
          'index_bytes',
          'rows_estimate',
        ]);
        assert.equal(table.total_bytes, table.table_bytes + table.toast_bytes + table.index_bytes, table.name);
      }
      assert.ok(stats.tables.length <= 10);
      const totals = stats.tables.map((x: { total_bytes: number }) => x.total_bytes);
      assert.deepEqual(
        totals,
        [...totals].sort((a, b) => b - a),
        'largest first',
      );
      assert.equal(stats.retention.body_retention, '30d');
      assert.equal(stats.retention.body_retention_ms, 30 * 86_400_000);
      assert.equal(stats.retention.last_run.rows, 1);
      assert.equal(stats.retention.last_run.bytes, run.bytes);
      assert.equal(stats.retention.runs, 1);

      const page = await request(t.app).get('/support').auth('support', 'test-support-password').expect(200);
      const section = page.text.slice(page.text.indexOf('<section id="storage"'));
      assert.match(section, /<h2>Storage<\/h2>/);
      assert.match(section, /DATABASE_SIZE_LIMIT not set/);
      assert.match(section, /1 bodies dropped/);
      assert.match(section, /<td class="mono">deliveries<\/td>/);
      assert.match(section, /<td class="mono">tickets<\/td>/);
    });
  });
});
