// Log lines: levels, the request id on every line of a request (and in the reply), the
// delivery id on webhook lines.
import assert from 'node:assert/strict';
import request from 'supertest';
import { ConfigError, loadConfig } from '../src/config.js';
import { log } from '../src/log.js';
import { type App, captureOutput, fixture, logLines, resetDatabase, sendWebhook, testApp } from './helpers.js';
import { fulfilment } from './tickets-helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('logs', () => {
  let app: App;
  before(async () => {
    app = testApp().app;
    await resetDatabase();
  });

  it("echoes Heroku's X-Request-ID, or a new one when it is absent or not an id", async () => {
    const given = await request(app).get('/healthz').set('X-Request-ID', 'f3b1c2d4-heroku-router-id').expect(200);
    assert.equal(given.headers['x-request-id'], 'f3b1c2d4-heroku-router-id');
    const none = await request(app).get('/api/listings').expect(401);
    assert.match(none.headers['x-request-id']!, UUID);
    const bad = await request(app).get('/healthz').set('X-Request-ID', 'two words\u00e9').expect(200);
    assert.match(bad.headers['x-request-id']!, UUID);
    const webhook = await sendWebhook(app, fixture('ticket.add.json')).expect(200);
    assert.match(webhook.headers['x-request-id']!, UUID);
  });

  it('puts the request id and the delivery id on every line of a webhook', async () => {
    const output = await captureOutput(async () => {
      await sendWebhook(app, fixture('order.update.json')).set('X-Request-ID', 'req-order-update-1').expect(200);
      // refused inside the handler: its own line, with the same context
      await sendWebhook(app, fulfilment('eticket', { order_id: 'R-20027', file: 'bm90IGEgcGRm' }))
        .set('X-Request-ID', 'req-bad-file-1')
        .expect(200);
    });
    const lines = logLines(output);
    const webhookLines = lines.filter((l) => l.msg === 'webhook');
    assert.equal(webhookLines.length, 2, output);
    assert.equal(webhookLines[0]!.request_id, 'req-order-update-1');
    assert.match(String(webhookLines[0]!.delivery_id), /^\d+$/);
    const refusal = lines.filter((l) => l.request_id === 'req-bad-file-1');
    assert.deepEqual(
      refusal.map((l) => l.msg),
      ['fulfilment refused', 'webhook'],
      output,
    );
    assert.equal(refusal[0]!.delivery_id, refusal[1]!.delivery_id);
    assert.match(String(refusal[0]!.delivery_id), /^\d+$/);
    for (const l of lines) assert.ok(l.at && l.level && l.msg, JSON.stringify(l));
  });

  it('a signature refusal is logged with the request id and no delivery', async () => {
    const output = await captureOutput(() =>
      sendWebhook(app, fixture('ticket.add.json'), { token: 'wrong' }).set('X-Request-ID', 'req-unsigned-1').expect(401),
    );
    const [line] = logLines(output);
    assert.equal(line!.msg, 'webhook refused: signature');
    assert.equal(line!.request_id, 'req-unsigned-1');
    assert.equal(line!.delivery_id, undefined);
  });

  it('LOG_LEVEL: lines below it are not written; silent writes none', async () => {
    const all = () => {
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      return Promise.resolve();
    };
    const msgs = async (level: string) => logLines(await captureOutput(all, level)).map((l) => l.msg);
    assert.deepEqual(await msgs('debug'), ['d', 'i', 'w', 'e']);
    assert.deepEqual(await msgs('info'), ['i', 'w', 'e']);
    assert.deepEqual(await msgs('warn'), ['w', 'e']);
    assert.deepEqual(await msgs('error'), ['e']);
    assert.deepEqual(await msgs('silent'), []);
    assert.throws(
      () => loadConfig({ LOG_LEVEL: 'verbose' }),
      (e: Error) => e instanceof ConfigError && /LOG_LEVEL/.test(e.message),
    );
  });
});
