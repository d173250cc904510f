// GET /api/openapi.json against the real routes: every mounted /api route is in the document
// (and nothing else), and real replies of every route, successes and errors, validate against
// the document's JSON Schemas (ajv, draft 2020-12), so the document cannot drift from the code.
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import request from 'supertest';
import { openApiPath } from '../src/api/openapi.js';
import { runRetention } from '../src/webhooks/retention.js';
import { addListing, api, type App, fixture, resetDatabase, sendWebhook, testSql } from './helpers.js';
import { salesWorld, type SalesWorld } from './sales-helpers.js';
import { fulfilment, largePdf, makePdf } from './tickets-helpers.js';

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** "get /api/listings/{id}" for every route express has mounted under /api. */
function mountedApiRoutes(app: App): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const p of [layer.route.path].flat()) {
          if (!p.startsWith('/api/')) continue;
          for (const [method, on] of Object.entries(layer.route.methods))
            if (on && method !== '_all') found.push(`${method} ${openApiPath(p)}`);
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app.express as unknown as { router: { stack: Layer[] } }).router.stack);
  return found.sort();
}

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
};

describe('OpenAPI document', () => {
  let app: App;
  let doc: Doc;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  const checked = new Set<string>();

  /** Validates a real reply against the document: the status's schema, or `default` for errors. */
  function conforms(method: string, path: string, res: request.Response) {
    const op = doc.paths[path]?.[method];
    assert.ok(op, `${method} ${path} is in the document`);
    const described = op.responses[String(res.status)] ?? (res.status >= 400 ? op.responses.default : undefined);
    assert.ok(
      described,
      `${method} ${path} answered ${res.status}, which the document does not describe: ${String(res.text).slice(0, 300)}`,
    );
    const type = String(res.headers['content-type']).split(';')[0]!;
    assert.ok(described.content?.[type], `${method} ${path} ${res.status}: content type ${type} is described`);
    if (type === 'application/json') {
      const validate = ajv.compile(described.content[type].schema);
      assert.ok(
        validate(res.body),
        `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body).slice(0, 500)}`,
      );
    } else {
      assert.ok(Buffer.isBuffer(res.body) ? res.body.length > 0 : res.text.length > 0, 'a file');
    }
    if (res.status < 400) checked.add(`${method} ${path}`);
  }

  let world: SalesWorld;
  before(async () => {
    world = await salesWorld(); // the app with a Tixstock simulator for the /api/holds routes
    app = world.app;
    await resetDatabase();
    doc = (await request(app).get('/api/openapi.json').expect(200)).body;
  });

  after(() => world?.close());

  it('is OpenAPI 3.1, served without the API token', async () => {
    const res = await request(app)
      .get('/api/openapi.json')
      .expect(200)
      .expect('Content-Type', /application\/json/);
    assert.equal(res.body.openapi, '3.1.0');
    assert.equal(res.body.paths['/api/listings'].get.security.length, 1, 'the API itself needs the token');
    conforms('get', '/api/openapi.json', res);
  });

  it('describes every mounted /api route, and only those', () => {
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`))
      .sort();
    assert.deepEqual(documented, mountedApiRoutes(app));
    assert.ok(documented.length >= 14, `${documented.length} routes`);
  });

  it('real replies of every route match the document', async () => {
    const listingId = await addListing(app);
    const eventId = JSON.parse(fixture('ticket.add.json').toString('utf8')).data.event.id as string;
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    await sendWebhook(app, fulfilment('eticket', { order_id: 'R-20027' }, await makePdf('R-20027'))).expect(200);
    await sendWebhook(app, '{"not": "a webhook"').expect(400); // stored as invalid: replayable

    const a = api(app);
    conforms('get', '/api/listings', await a.get('/api/listings'));
    conforms('get', '/api/listings', await a.get('/api/listings?limit=0'));
    conforms('get', '/api/listings/{id}', await a.get(`/api/listings/${listingId}`));
    conforms('get', '/api/listings/{id}', await a.get('/api/listings/1'));
    conforms('get', '/api/listings/{id}/ledger', await a.get(`/api/listings/${listingId}/ledger`));
    conforms('get', '/api/events', await a.get('/api/events'));
    conforms('get', '/api/events/{id}', await a.get(`/api/events/${eventId}`));
    const deliveries = await a.get('/api/deliveries');
    conforms('get', '/api/deliveries', deliveries);
    conforms('get', '/api/deliveries', await a.get('/api/deliveries?outcome=nonsense'));
    const invalid = (deliveries.body.items as { id: string; outcome: string }[]).find((d) => d.outcome === 'invalid')!;
    const applied = (deliveries.body.items as { id: string; outcome: string }[]).find((d) => d.outcome === 'applied')!;
    conforms('get', '/api/deliveries/{id}', await a.get(`/api/deliveries/${invalid.id}`));
    conforms('post', '/api/deliveries/{id}/replay', await a.post(`/api/deliveries/${invalid.id}/replay`));
    conforms('post', '/api/deliveries/{id}/replay', await a.post(`/api/deliveries/${applied.id}/replay`));
    const broker = await a.post('/api/brokers').send({ username: 'reseller-one', password: 'long enough' });
    conforms('post', '/api/brokers', broker);
    conforms('post', '/api/brokers/{id}/close', await a.post(`/api/brokers/${broker.body.id}/close`));
    conforms('post', '/api/brokers/{id}/close', await a.post('/api/brokers/nobody/close'));

    const held = await world.listing(5);
    const hold = await a.post('/api/holds').send({ listing_id: held, quantity: 3 });
    conforms('post', '/api/holds', hold);
    conforms('post', '/api/holds', await a.post('/api/holds').send({ listing_id: held, quantity: 0 }));
    conforms('get', '/api/holds', await a.get('/api/holds'));
    conforms('get', '/api/holds/{id}', await a.get(`/api/holds/${hold.body.id}`));
    conforms('post', '/api/holds/{id}/release', await a.post(`/api/holds/${hold.body.id}/release`).send({ quantity: 1 }));
    const customer = { id: 'C-1', first_name: 'Ana', last_name: 'Doc', email_address: 'ana@example.org' };
    conforms(
      'post',
      '/api/holds/{id}/order',
      await a
        .post(`/api/holds/${hold.body.id}/order`)
        .send({ order_id: 'R-DOC-1', order_status: 'Approved', currency: 'GBP', customer, quantity: 2 }),
    );
    conforms('post', '/api/brokers', await a.post('/api/brokers').send({ username: 'x' }));
    conforms('get', '/api/orders/{id}', await a.get('/api/orders/R-20027'));
    conforms('get', '/api/orders/{id}', await a.get('/api/orders/R-404'));
    conforms('get', '/api/orders/{id}/tickets.pdf', await a.get('/api/orders/R-20027/tickets.pdf').buffer(true));
    conforms('put', '/api/orders/{id}/status', await a.put('/api/orders/R-20027/status').send({ status: 'Dispatched' }));
    conforms('put', '/api/orders/{id}/status', await a.put('/api/orders/R-NEW/status').send({ status: 'Reserved' }));
    const [ticket] = (await a.get('/api/orders/R-20027')).body.tickets;
    conforms('get', '/api/tickets/{id}.pdf', await a.get(`/api/tickets/${ticket.id}.pdf`).buffer(true));
    // A fulfilment whose PDF is stored apart (the body keeps a reference), replayed from it.
    await sendWebhook(app, fulfilment('eticket', { order_id: 'R-20027', seat: '22' }, await largePdf(100 * 1024))).expect(200);
    const sql = testSql();
    const [referring] = await sql<
      { id: string }[]
    >`select id::text from deliveries where body_file is not null order by id desc limit 1`;
    conforms('get', '/api/deliveries/{id}', await a.get(`/api/deliveries/${referring!.id}`));
    await sql`update deliveries set outcome = 'failed' where id = ${referring!.id}`; // as if it had failed on an earlier version
    const rebuilt = await a.post(`/api/deliveries/${referring!.id}/replay`);
    assert.ok(rebuilt.body.body_rebuilt_from_ticket, JSON.stringify(rebuilt.body));
    conforms('post', '/api/deliveries/{id}/replay', rebuilt);
    // A body dropped by retention, and the retention run in the stats.
    await sql`update deliveries set received_at = now() - interval '31 days' where id = ${applied.id}`;
    assert.ok((await runRetention(sql, world.config, { pauseMs: 0 })).rows >= 1);
    conforms('get', '/api/deliveries', await a.get('/api/deliveries'));
    conforms('get', '/api/deliveries/{id}', await a.get(`/api/deliveries/${applied.id}`));
    const stats = await a.get('/api/stats');
    assert.ok(stats.body.retention.last_run, JSON.stringify(stats.body.retention));
    conforms('get', '/api/stats', stats);

    // A reconciliation against the simulator, report only: 202 (a bad body 400), then done.
    const started = await a.post('/api/reconciliations').send({ repair: false });
    conforms('post', '/api/reconciliations', started);
    assert.equal(started.status, 202, started.text);
    conforms('post', '/api/reconciliations', await a.post('/api/reconciliations').send({ repair: 'yes' }));
    let run = started;
    for (let i = 0; i < 200 && run.body.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      run = await a.get(`/api/reconciliations/${started.body.id}`);
    }
    assert.equal(run.body.status, 'done', JSON.stringify(run.body));
    assert.ok(run.body.differences.length > 0, 'listings only here are reported');
    conforms('get', '/api/reconciliations/{id}', run);
    conforms('get', '/api/reconciliations/{id}', await a.get('/api/reconciliations/999999'));
    conforms('get', '/api/reconciliations', await a.get('/api/reconciliations'));
    conforms('get', '/api/reconciliations', await a.get('/api/reconciliations?limit=0'));

    conforms('get', '/api/listings', await request(app).get('/api/listings')); // 401
    conforms('get', '/api/events', await request(app).get('/api/events'));

    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    assert.deepEqual(
      documented.filter((r) => !checked.has(r)),
      [],
      'every documented route was called with success',
    );
  });

  it('a reply that differs from its schema fails the check', () => {
    const schema = doc.paths['/api/listings/{id}']!.get!.responses['200']!.content!['application/json']!.schema;
    const validate = ajv.compile(schema);
    assert.equal(validate({ id: '1', quantity: -1 }), false);
  });
});
