// order.update, ticket.sold's order_details, and the orders API: the reply's status is the
// reseller's own when set, unknown orders are 404 JSON, and ids are data, never paths.
import assert from 'node:assert/strict';
import request from 'supertest';
import { addListing, api, fixture, fixtureFor, resetDatabase, sendWebhook, testApp, webhook } from './helpers.js';
import { fulfilment, makePdf, type TestApp } from './tickets-helpers.js';

describe('orders', () => {
  let app: TestApp['app'];
  let sql: TestApp['sql'];
  before(() => ({ app, sql } = testApp()));
  beforeEach(() => resetDatabase());

  const order = async (id: string) =>
    (
      await api(app)
        .get(`/api/orders/${encodeURIComponent(id)}`)
        .expect(200)
    ).body;
  const orderUpdate = JSON.parse(fixture('order.update.json').toString('utf8')).data;

  it('order.update upserts the order and replies {order_status, success} (PHP-style fixture)', async () => {
    const res = await sendWebhook(app, fixture('order.update.json')).expect(200);
    assert.deepEqual(res.body, { order_status: 'Approved', success: true });
    const o = await order('R-20027');
    assert.equal(o.id, 'R-20027');
    assert.equal(o.status, 'Approved');
    assert.equal(o.order_status, 'Approved');
    assert.equal(o.customer_name, 'Ana Sørensen', '\\u00f8 decoded');
    assert.equal(o.customer_email, 'ana@example.org');
    assert.equal(o.customer.billing_address.town, 'Leeds');
    assert.equal(o.items[0].customer.nationality, 'Danish', 'unnamed fields are kept');
    assert.deepEqual([o.quantity, o.currency, o.sub_total, o.grand_total], [2, 'GBP', '118.00', '118.00']);
    assert.deepEqual(o.tickets, []);
    assert.deepEqual(o.proof_file_urls, []);
    const [delivery] = await sql`select outcome, order_id from deliveries order by id desc limit 1`;
    assert.deepEqual({ ...delivery }, { outcome: 'applied', order_id: 'R-20027' });
  });

  it('a later order.update changes status, tracking id and label; money stays exact', async () => {
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    const res = await sendWebhook(
      app,
      webhook('order.update', {
        ...orderUpdate,
        status: 'Shipped',
        shipping_tracking_id: 12345,
        shipping_label: 'https://example.org/label/1.pdf',
        sub_total: 118,
        grand_total: '120.5',
      }),
    ).expect(200);
    assert.deepEqual(res.body, { order_status: 'Shipped', success: true });
    const o = await order('R-20027');
    assert.deepEqual(
      [o.status, o.shipping_tracking_id, o.shipping_label, o.sub_total, o.grand_total],
      ['Shipped', '12345', 'https://example.org/label/1.pdf', '118.00', '120.50'],
    );
  });

  it('the reseller’s own status (PUT /api/orders/:id/status) is what order.update and fulfilment reply', async () => {
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    const put = await api(app).put('/api/orders/R-20027/status').send({ status: 'Dispatched' }).expect(200);
    assert.equal(put.body.order_status, 'Dispatched');
    assert.equal(put.body.status, 'Approved', 'Tixstock’s status is kept beside ours');

    const res = await sendWebhook(app, webhook('order.update', { ...orderUpdate, status: 'Completed' })).expect(200);
    assert.deepEqual(res.body, { order_status: 'Dispatched', success: true });
    assert.equal((await order('R-20027')).status, 'Completed');

    const f = await sendWebhook(app, fulfilment('eticket', { order_id: 'R-20027' }, await makePdf('R-20027'))).expect(200);
    assert.equal(f.body.order_status, 'Dispatched');

    // null hands the status back to Tixstock
    await api(app).put('/api/orders/R-20027/status').send({ status: null }).expect(200);
    const back = await sendWebhook(app, webhook('order.update', { ...orderUpdate, status: 'Refunded' })).expect(200);
    assert.deepEqual(back.body, { order_status: 'Refunded', success: true });
  });

  it('PUT status for an order Tixstock has not mentioned yet creates it (201); bad bodies are 400 JSON', async () => {
    const created = await api(app).put('/api/orders/R-NEW/status').send({ status: 'Paid' }).expect(201);
    assert.equal(created.body.order_status, 'Paid');
    const res = await sendWebhook(app, webhook('order.update', { ...orderUpdate, id: 'R-NEW' })).expect(200);
    assert.deepEqual(res.body, { order_status: 'Paid', success: true });

    for (const body of [{}, { status: '' }, { status: 5 }, { status: 'x'.repeat(101) }]) {
      const bad = await api(app).put('/api/orders/R-NEW/status').send(body).expect(400);
      assert.equal(bad.body.success, false);
      assert.match(bad.body.message, /body\.status/);
    }
    const notJson = await api(app)
      .put('/api/orders/R-NEW/status')
      .set('Content-Type', 'application/json')
      .send('{"status":')
      .expect(400);
    assert.equal(notJson.body.success, false);
  });

  it('ticket.sold with order_details records the order (PHP-style fixture)', async () => {
    const listingId = await addListing(app);
    const res = await sendWebhook(app, fixtureFor('ticket.sold.json', listingId)).expect(200);
    assert.equal(res.body.success, true);
    const o = await order('R-20027');
    assert.equal(o.status, 'Approved');
    assert.equal(o.customer_name, 'Ana Sørensen');
    // an order.update later keeps what ticket.sold recorded and adds its own
    await sendWebhook(app, webhook('order.update', { id: 'R-20027', status: 'Shipped' })).expect(200);
    const after = await order('R-20027');
    assert.deepEqual([after.status, after.customer_email], ['Shipped', 'ana@example.org']);
  });

  it('order.update with invalid fields is a 400 naming them', async () => {
    const res = await sendWebhook(app, webhook('order.update', { ...orderUpdate, grand_total: 'lots', quantity: -1 })).expect(
      400,
    );
    assert.match(res.body.message, /data\.grand_total/);
    assert.match(res.body.message, /data\.quantity/);
    const noId = await sendWebhook(app, webhook('order.update', { status: 'Approved' })).expect(400);
    assert.match(noId.body.message, /data\.id/);
  });

  it('unknown orders and tickets are 404 JSON; the API needs the token', async () => {
    for (const url of ['/api/orders/R-404', '/api/orders/R-404/tickets.pdf', '/api/tickets/999999.pdf', '/api/tickets/abc.pdf']) {
      const res = await api(app).get(url).expect(404);
      assert.match(res.headers['content-type']!, /application\/json/);
      assert.equal(res.body.success, false);
      assert.match(res.body.message, /not found/);
    }
    await request(app).get('/api/orders/R-20027').expect(401);
    await request(app).get('/api/tickets/1.pdf').set('Authorization', 'Bearer wrong').expect(401);
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    const none = await api(app).get('/api/orders/R-20027/tickets.pdf').expect(404);
    assert.match(none.body.message, /has no ticket PDFs/);
  });

  it('ids with path tricks name no order and reach no file', async () => {
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    const tricks = [
      '/api/orders/..%2F..%2Fetc%2Fpasswd',
      '/api/orders/R-20027%2F..',
      '/api/orders/R-20027%00',
      '/api/orders/%2e%2e',
      '/api/tickets/..%2F1.pdf',
      '/api/tickets/1%00.pdf',
      '/api/tickets/-1.pdf',
      '/api/orders/R-20027%2F..%2F..%2Fpackage.json/tickets.pdf',
      '/api/orders/' + 'x'.repeat(101),
    ];
    for (const url of tricks) {
      const res = await api(app).get(url);
      assert.ok(res.status === 404 || res.status === 400, `${url}: ${res.status}`);
      assert.match(res.headers['content-type']!, /application\/json/, url);
      assert.equal(res.body.success, false, url);
    }
    // An order whose id really contains "/" and ".." is found by its encoded id, and only it.
    await sendWebhook(app, webhook('order.update', { ...orderUpdate, id: '../R/1' })).expect(200);
    assert.equal((await order('../R/1')).id, '../R/1');
  });
});
