// The support page's delivery log: the last 7 days by day, filters, the last error at the top,
// one delivery with its headers, body (bounded), reply and outcome; everything escaped.
import assert from 'node:assert/strict';
import request from 'supertest';
import { addListing, resetDatabase, sendWebhook, testApp, webhook } from './helpers.js';
import { fulfilment, type TestApp } from './tickets-helpers.js';

const auth = (r: request.Test) => r.auth('support', 'test-support-password');
const EVIL = '<script>alert("delivery")</script>';

describe('support page: deliveries', () => {
  let t: TestApp;
  const ids: Record<string, string> = {};
  const idOf = async () => String((await t.sql`select max(id)::text as id from deliveries`)[0]!.id);

  before(async () => {
    t = testApp();
    await resetDatabase();
    await addListing(t.app, { note: EVIL });
    ids.applied = await idOf();
    await sendWebhook(t.app, webhook('ticket.add', { note: EVIL })).expect(400); // invalid: no listing fields
    ids.invalid = await idOf();
    await sendWebhook(t.app, webhook('ticket.teleport', {})).expect(400);
    ids.unsupported = await idOf();
    await sendWebhook(t.app, webhook('order.update', { id: 'R-D1', status: 'Approved', pad: 'x'.repeat(70_000) })).expect(200);
    ids.large = await idOf();
    await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-D1', file: 'bm90IGEgcGRm' })).expect(200); // refused: not a PDF
    ids.refused = await idOf();
    // Test set-up only: move two deliveries into the past.
    await t.sql`update deliveries set received_at = now() - interval '3 days' where id = ${ids.unsupported!}`;
    await t.sql`update deliveries set received_at = now() - interval '10 days' where id = ${ids.applied!}`;
  });

  it('lists the last 7 days by day, the last error first, every value escaped', async () => {
    const res = await auth(request(t.app).get('/support/deliveries')).expect(200);
    assert.match(res.headers['content-type']!, /text\/html/);
    const lastError = res.text.slice(res.text.indexOf('id="last-error"'), res.text.indexOf('id="delivery-filter"'));
    assert.match(lastError, new RegExp(`Delivery ${ids.refused}<`), 'the refused fulfilment is the latest error');
    assert.match(lastError, /file is not a PDF/);
    const days = res.text.slice(res.text.indexOf('id="days"'), res.text.indexOf('id="deliveries"'));
    assert.equal((days.match(/<tr>|<tr class/g) ?? []).length - 1, 2, 'today and 3 days ago; not the delivery of 10 days ago');
    const list = res.text.slice(res.text.indexOf('id="deliveries"'));
    for (const k of ['invalid', 'unsupported', 'large', 'refused']) assert.ok(list.includes(`>${ids[k]}</a>`), k);
    assert.ok(!list.includes(`>${ids.applied}</a>`), 'older than 7 days');
    assert.ok(!res.text.includes('<script>'));
  });

  it('filters by outcome, type and day', async () => {
    const rowsOf = async (query: Record<string, string>) => {
      const res = await auth(request(t.app).get('/support/deliveries').query(query)).expect(200);
      const list = res.text.slice(res.text.indexOf('id="deliveries"'));
      return [...list.matchAll(/delivery\?id=(\d+)/g)].map((m) => m[1]);
    };
    assert.deepEqual(await rowsOf({ outcome: 'invalid' }), [ids.invalid]);
    assert.deepEqual(await rowsOf({ type: 'order.update' }), [ids.large]);
    assert.deepEqual(await rowsOf({ type: 'order.eticket_fulfilment', outcome: 'rejected' }), [ids.refused]);
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000).toISOString().slice(0, 10);
    assert.deepEqual(await rowsOf({ day: threeDaysAgo }), [ids.unsupported]);
    assert.deepEqual(
      await rowsOf({ outcome: 'nonsense' }),
      [ids.refused, ids.large, ids.unsupported, ids.invalid],
      'an unknown outcome is no filter',
    );
  });

  it('shows one delivery: headers, body, reply, outcome', async () => {
    const res = await auth(request(t.app).get('/support/delivery').query({ id: ids.invalid })).expect(200);
    assert.match(res.text, new RegExp(`id="delivery-id">${ids.invalid}<`));
    assert.match(res.text, /id="outcome">invalid \(HTTP 400\)/);
    const headers = res.text.slice(res.text.indexOf('id="headers"'), res.text.indexOf('id="reply"'));
    assert.match(headers, /tixstock-version.*v1/s);
    assert.match(headers, /user-agent.*Tixstock API/s);
    assert.doesNotMatch(headers, /signature/i, 'the signature is never kept');
    assert.ok(
      res.text.includes('&lt;script&gt;alert(\\&quot;delivery\\&quot;)&lt;\\/script&gt;'),
      'the body (as PHP escaped it), escaped',
    );
    assert.ok(!res.text.includes('<script>'));
    assert.match(res.text.slice(res.text.indexOf('id="reply"')), /&quot;success&quot;: false/);
  });

  it('shows a large body cut, and 404 for unknown ids', async () => {
    const res = await auth(request(t.app).get('/support/delivery').query({ id: ids.large })).expect(200);
    assert.match(res.text, /The first 65536 of \d+ bytes/);
    assert.ok(res.text.length < 100_000, `${res.text.length} characters`);
    for (const id of ['999999999', '../1', '', '1 or 1=1']) {
      const r = await auth(request(t.app).get('/support/delivery').query({ id })).expect(404);
      assert.match(r.headers['content-type']!, /text\/html/);
    }
    await request(t.app).get('/support/deliveries').expect(401);
  });
});
