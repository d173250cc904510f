// Input made to hurt: secrets spelled to slip past redaction, bodies that used to answer 500
// (and so were never logged and retried forever), NUL in API input, ids with CR/LF or bidi
// characters. Each is a clear 4xx, recorded, and no secret is stored.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { api, type App, fixture, resetDatabase, sendWebhook, testApp, testSql, webhook } from './helpers.js';

describe('hostile input', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });
  const sql = () => testSql();
  const lastDelivery = async () => (await sql()`select * from deliveries order by id desc limit 1`)[0]!;
  /** Sends a signed body; expects `status` and a recorded delivery with `outcome`. */
  async function refused(
    body: Buffer,
    status: number,
    outcome: string,
    message: RegExp,
    opts: Parameters<typeof sendWebhook>[2] = {},
  ) {
    const res = await sendWebhook(app, body, opts);
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.success, false);
    assert.match(res.body.message, message);
    const d = await lastDelivery();
    assert.equal(d.outcome, outcome);
    assert.equal(d.status, status);
    return d;
  }

  describe('secrets are redacted by parsed key', () => {
    before(async () => {
      await api(app)
        .post('/api/brokers')
        .send({ username: 'escaped@example.org', password: 'correct horse escaped' })
        .expect(201);
    });

    it('"pass\\u0077ord" authenticates and is not stored in cleartext', async () => {
      const body = Buffer.from(
        '{"data":{"username":"escaped@example.org","pass\\u0077ord":"correct horse escaped"},"meta":{"type":"broker.authenticate"}}',
      );
      const res = await sendWebhook(app, body).expect(200);
      assert.equal(res.body.success, 'true');
      const d = await lastDelivery();
      assert.equal(d.redacted, true);
      assert.doesNotMatch(d.body.toString(), /correct horse/);
      const viaApi = await api(app).get(`/api/deliveries/${d.id}`).expect(200);
      assert.doesNotMatch(JSON.stringify(viaApi.body), /correct horse/);
    });

    it('any case of the key is redacted too', async () => {
      const body = Buffer.from(
        '{"data":{"username":"escaped@example.org","PassWord":"correct horse upper"},"meta":{"type":"broker.authenticate"}}',
      );
      await sendWebhook(app, body).expect(400); // no "password" field for the schema
      const d = await lastDelivery();
      assert.equal(d.redacted, true);
      assert.doesNotMatch(d.body.toString(), /correct horse/);
    });

    it('a malformed body keeps no fragment of the password, in the body or the stored error', async () => {
      for (const text of [
        '{"data":{"username":"u","pass\\u0077ord":"hunter2-secret","x":}',
        '{"data":{"username":"u","password":"hunter2-secret" "x":1}}',
        '{"data":{"username":"u","password":hunter2-secret}}',
      ]) {
        const res = await sendWebhook(app, Buffer.from(text)).expect(400);
        assert.doesNotMatch(JSON.stringify(res.body), /hunter2/, text);
        const d = await lastDelivery();
        assert.equal(d.redacted, true, text);
        assert.doesNotMatch(`${d.body.toString()} ${d.error} ${JSON.stringify(d.reply)}`, /hunter2/, text);
      }
    });
  });

  describe('bodies that answered 500 are 400 (or 415), recorded', () => {
    const event = () => JSON.parse(fixture('event.update.json').toString()).data;

    it('NUL in meta.type', async () => {
      const d = await refused(
        Buffer.from('{"data":{"external_id":"1","hold_quantity":1},"meta":{"type":"ticket.hold\\u0000"}}'),
        400,
        'invalid',
        /meta\.type contains a NUL/,
      );
      assert.equal(d.type, null);
    });

    it('NUL in a data string, short or long', async () => {
      await refused(webhook('event.update', { ...event(), name: 'a\u0000b' }), 400, 'invalid', /data\.name contains a NUL/);
      await refused(
        webhook('event.update', { ...event(), description: `${'x'.repeat(70_000)}\u0000` }),
        400,
        'invalid',
        /data\.description contains a NUL/,
      );
    });

    it('a body signed over gzip bytes: 415 with Content-Encoding, 400 without', async () => {
      const gz = gzipSync(fixture('event.update.json'));
      const res = await sendWebhook(app, gz, { contentType: 'application/json' }).set('Content-Encoding', 'gzip');
      assert.equal(res.status, 415);
      assert.match(res.body.message, /Content-Encoding "gzip" is not accepted/);
      assert.equal((await lastDelivery()).outcome, 'invalid');
      await refused(gz, 400, 'invalid', /not valid UTF-8/);
    });

    it('invalid UTF-8 is refused, not turned into U+FFFD', async () => {
      const body = Buffer.concat([
        Buffer.from('{"data":{"id":"E-L1","name":"Caf'),
        Buffer.from([0xe9]),
        Buffer.from('"},"meta":{"type":"event.update"}}'),
      ]);
      const d = await refused(body, 400, 'invalid', /not valid UTF-8/);
      assert.equal(Buffer.compare(d.body, body), 0, 'stored byte for byte');
      assert.equal((await sql()`select 1 from events where id = 'E-L1'`).length, 0);
    });

    it('a charset other than UTF-8: 415', async () => {
      await refused(fixture('event.update.json'), 415, 'invalid', /charset "iso-8859-1" is not accepted/, {
        contentType: 'application/json; charset=ISO-8859-1',
      });
      await sendWebhook(app, fixture('event.update.json'), { contentType: 'application/json; charset="UTF-8"' }).expect(200);
    });

    it('an invalid escape or a control character inside a string of 64 KB or more', async () => {
      const long = 'x'.repeat(70_000);
      const badEscape = Buffer.from(
        `{"data":{"id":"E-ESC","name":"n","description":"${long}\\q"},"meta":{"type":"event.update"}}`,
      );
      await refused(badEscape, 400, 'invalid', /invalid escape or control character/);
      const control = Buffer.from(
        `{"data":{"id":"E-CTL","name":"n","description":"${long}\u0001"},"meta":{"type":"event.update"}}`,
      );
      await refused(control, 400, 'invalid', /invalid escape or control character/);
      // ... also in a fulfilment's file, which stays bytes until the PDF check reads it.
      const f = JSON.parse(fixture('order.eticket_fulfilment.json').toString());
      const file = Buffer.from(
        JSON.stringify({ ...f, data: { ...f.data, file: 'A'.repeat(70_000) } }).replace('AAAA"', 'AAA\\q"'),
      );
      await refused(file, 400, 'invalid', /invalid escape or control character/);
    });

    it('nesting of 30,000 levels, and of 5,000 inside a ticket.add', async () => {
      const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
      await refused(
        Buffer.from(`{"data":{"id":"E-DEEP","name":"n","x":${deep(30_000)}},"meta":{"type":"event.update"}}`),
        400,
        'invalid',
        /deeper than 64 levels/,
      );
      const add = JSON.parse(fixture('ticket.add.json').toString());
      const body = JSON.stringify(add).replace('"broker_id"', `"deep":${deep(5_000)},"broker_id"`);
      await refused(Buffer.from(body), 400, 'invalid', /deeper than 64 levels/);
      // Brackets inside strings are text, not nesting.
      await sendWebhook(app, webhook('event.update', { ...event(), id: 'E-BRACKETS', description: '['.repeat(1000) })).expect(
        200,
      );
    });
  });

  describe('NUL in /api and /support input: 400, never 500', () => {
    it('path, query and body', async () => {
      for (const url of [
        '/api/events/%00',
        '/api/events/E%00',
        '/api/listings?event_id=%00',
        '/api/listings?status=%00',
        '/api/events?status=%00',
        '/api/orders/R%00',
        '/api/listings/1%00',
      ]) {
        const res = await api(app).get(url);
        assert.ok(res.status === 400 || res.status === 404, `${url}: ${res.status}`);
        assert.equal(res.body.success, false, url);
      }
      const put = await api(app).put('/api/orders/R-NUL/status').send({ status: 'Dis\u0000patched' });
      assert.equal(put.status, 400);
      assert.match(put.body.message, /body\.status contains a NUL/);
      const malformed = await api(app)
        .post('/api/brokers')
        .set('Content-Type', 'application/json')
        .send('{"username":"x","password":hunter2-secret}');
      assert.equal(malformed.status, 400);
      assert.doesNotMatch(JSON.stringify(malformed.body), /hunter2/);
      const broker = await api(app).post('/api/brokers').send({ username: 'nul\u0000user', password: 'long enough password' });
      assert.equal(broker.status, 400);
      assert.match(broker.body.message, /body\.username contains a NUL/);
      const support = await request(app)
        .get('/support?q=%00')
        .set('Authorization', `Basic ${Buffer.from('support:test-support-password').toString('base64')}`);
      assert.equal(support.status, 400);
    });
  });

  describe('one id rule: no control or bidirectional characters, in webhooks as in /support and /api', () => {
    const order = () => JSON.parse(fixture('order.update.json').toString()).data;

    it('order.update with CR/LF or a bidi override in its id is refused', async () => {
      for (const id of ['R-1\r\nX-Injected: 1', 'R-\u202e1002', 'R-\u2066x']) {
        const d = await refused(
          webhook('order.update', { ...order(), id }),
          400,
          'invalid',
          /data\.id: must not contain control characters/,
        );
        assert.equal(d.type, 'order.update');
      }
      assert.equal((await sql()`select 1 from orders where id like 'R-%' and id <> 'R-20027'`).length, 0);
    });

    it('/support/order and /api/orders refuse the same ids', async () => {
      for (const id of ['R-1\r\nX', 'R-\u202e1002']) {
        await api(app)
          .get(`/api/orders/${encodeURIComponent(id)}`)
          .expect(400);
        await request(app)
          .get(`/support/order?id=${encodeURIComponent(id)}`)
          .set('Authorization', `Basic ${Buffer.from('support:test-support-password').toString('base64')}`)
          .expect(400);
      }
    });
  });
});
