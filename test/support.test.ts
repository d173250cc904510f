// The support page: HTTP Basic, escaped output, form tokens (supertest), and a real headless
// Chromium that searches, opens an order, downloads one PDF and all merged, and e-mails them
// through a real SMTP server.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import request from 'supertest';
import { startJobWorker, type JobWorker } from '../src/jobs/worker.js';
import { mailJobHandlers } from '../src/support/mail-jobs.js';
import { formToken } from '../src/support/auth.js';
import { launchBrowser, type Browser } from './browser.js';
import { fixture, resetDatabase, sendWebhook, testApp, webhook } from './helpers.js';
import { fulfilment, makePdf, pageSizes, sha256, startSmtp, waitUntil, type TestApp, type TestSmtp } from './tickets-helpers.js';

const PASSWORD = 'test-support-password';
const auth = (r: request.Test, password = PASSWORD) => r.auth('support', password);
const orderUpdate = JSON.parse(fixture('order.update.json').toString('utf8')).data;
const SCREENSHOT = path.join(tmpdir(), 'tixstock-support-order.png');

describe('support page (HTTP)', () => {
  let t: TestApp;
  before(() => (t = testApp()));
  beforeEach(() => resetDatabase());

  it('asks for HTTP Basic as "support" with SUPPORT_PASSWORD', async () => {
    const none = await request(t.app).get('/support').expect(401);
    assert.match(none.headers['www-authenticate']!, /^Basic realm="Tixstock support"/);
    assert.equal(none.body.success, false);
    await auth(request(t.app).get('/support'), 'wrong').expect(401);
    await request(t.app).get('/support').auth('admin', PASSWORD).expect(401);
    const ok = await auth(request(t.app).get('/support')).expect(200);
    assert.match(ok.headers['content-type']!, /text\/html/);
    assert.match(ok.headers['content-security-policy']!, /default-src 'none'/);
    const disabled = testApp({ SUPPORT_PASSWORD: '' });
    const off = await request(disabled.app).get('/support').auth('support', '').expect(503);
    assert.match(off.body.message, /SUPPORT_PASSWORD is not configured/);
  });

  it('escapes everything a webhook sent, and links only http(s) proof URLs', async () => {
    const evil = '<script>alert("x")</script><img src=x onerror=alert(1)>';
    await sendWebhook(
      t.app,
      webhook('order.update', {
        ...orderUpdate,
        id: 'R-<b>1</b>',
        customer: { ...orderUpdate.customer, first_name: evil, email_address: '"><i>@example.org' },
        shipping_label: 'javascript:alert(2)',
      }),
    ).expect(200);
    await sendWebhook(
      t.app,
      fulfilment('mobile', {
        order_id: 'R-<b>1</b>',
        row: '<u>F</u>',
        proof_file_url: ['javascript:alert(3)', 'https://example.org/p?a=1&b=<2>'],
      }),
    ).expect(200);
    const search = await auth(request(t.app).get('/support').query({ q: '<script>' })).expect(200);
    assert.ok(!search.text.includes('<script>'), 'no tag from the data or the query');
    assert.ok(search.text.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
    const page = await auth(request(t.app).get('/support/order').query({ id: 'R-<b>1</b>' })).expect(200);
    for (const raw of ['<script>', '<img', '<b>1</b>', '<u>F</u>', '"><i>', 'href="javascript:'])
      assert.ok(!page.text.includes(raw), raw);
    assert.ok(page.text.includes('R-&lt;b&gt;1&lt;/b&gt;'));
    assert.ok(page.text.includes('<a href="https://example.org/p?a=1&amp;b=&lt;2&gt;"'));
    assert.ok(page.text.includes('<span>javascript:alert(3)</span>'));
  });

  it('refuses form posts without the page’s token or from another origin', async () => {
    await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-1' }, await makePdf('R-1'))).expect(200);
    const form = { id: 'R-1', to: 'buyer@example.org', csrf: formToken(PASSWORD) };
    const noToken = await auth(request(t.app).post('/support/order/email'))
      .type('form')
      .send({ ...form, csrf: '' })
      .expect(403);
    assert.match(noToken.text, /not sent from the support page/);
    await auth(request(t.app).post('/support/order/email'))
      .set('Origin', 'https://evil.example')
      .type('form')
      .send(form)
      .expect(403);
    await auth(request(t.app).post('/support/order/email')).set('Origin', 'null').type('form').send(form).expect(403);
    const bad = await auth(request(t.app).post('/support/order/email'))
      .type('form')
      .send({ ...form, to: 'not-an-address' })
      .expect(400);
    assert.match(bad.text, /must be an e-mail address/);
    await auth(request(t.app).post('/support/order/email'))
      .type('form')
      .send({ ...form, id: 'R-404' })
      .expect(404);
    assert.equal((await t.sql`select count(*)::int as n from jobs where kind = 'mail.order_tickets'`)[0]!.n, 0);
    const ok = await auth(request(t.app).post('/support/order/email')).type('form').send(form).expect(303);
    assert.match(ok.headers.location!, /^\/support\/order\?id=R-1&queued=\d+$/);
    const [job] = await t.sql`select payload from jobs where kind = 'mail.order_tickets'`;
    assert.deepEqual(job!.payload, { order_id: 'R-1', to: 'buyer@example.org', requested_by: 'support page' });
  });

  it('unknown orders, tickets and tricky ids get a 404/400 page, never a file', async () => {
    for (const [url, status] of [
      ['/support/order?id=R-404', 404],
      ['/support/order', 400],
      ['/support/order?id=%00', 400],
      ['/support/ticket.pdf?id=..%2F..%2Fpackage.json', 404],
      ['/support/ticket.pdf?id=1', 404],
      ['/support/order/tickets.pdf?id=..%2F..%2F', 404],
    ] as const) {
      const res = await auth(request(t.app).get(url));
      assert.equal(res.status, status, url);
      assert.match(res.headers['content-type']!, /text\/html/, url);
    }
  });
});

describe('support page in headless Chromium', function () {
  this.timeout(90_000);
  let t: TestApp;
  let server: Server;
  let base: string;
  let smtp: TestSmtp;
  let worker: JobWorker;
  let browser: Browser;
  let page: Page;
  const pdfs = new Map<string, Buffer>();

  before(async () => {
    smtp = await startSmtp();
    t = testApp({ SMTP_URL: smtp.url, SUPPORT_EMAIL: 'support@reseller.example' });
    await resetDatabase();
    server = await new Promise<Server>((resolve) => {
      const s = t.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    worker = startJobWorker({ sql: t.sql, config: t.config, handlers: mailJobHandlers, pollMs: 50 });

    await sendWebhook(t.app, fixture('order.update.json')).expect(200);
    for (const seat of ['22', '21']) {
      pdfs.set(seat, await makePdf(`R-20027 F${seat}`, { width: 200 + Number(seat) }));
      await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-20027', seat }, pdfs.get(seat))).expect(200);
    }
    await sendWebhook(t.app, fixture('order.mobile_ticket_fulfilment.json')).expect(200);
    await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-20027', file: 'bm90IGEgcGRm' })).expect(200); // refused
    await waitUntil('the two notices', () => smtp.mails.length >= 2);

    browser = await launchBrowser({
      httpCredentials: { username: 'support', password: PASSWORD },
      acceptDownloads: true,
      javaScriptEnabled: false, // the page must work without it
      viewport: { width: 1200, height: 900 },
    });
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
  });

  after(async () => {
    await browser?.close();
    await worker?.stop(2000);
    await new Promise((r) => server?.close(r));
    await smtp?.close();
  });

  async function download(selector: string): Promise<Buffer> {
    const [file] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
    return readFile((await file.path())!);
  }

  it('finds the order by customer e-mail, name and id', async () => {
    await page.goto(`${base}/support`);
    assert.equal(await page.title(), 'Orders · Tixstock support');
    assert.match((await page.textContent('#recent')) ?? '', /R-20027/);
    assert.match((await page.textContent('#refused')) ?? '', /file is not a PDF/);
    for (const q of ['ana@example.org', 'sørensen', 'R-20027']) {
      await page.fill('input[name=q]', q);
      await Promise.all([page.waitForURL(/\/support\?q=/), page.click('button[type=submit]')]);
      const results = await page.textContent('#results');
      assert.match(results ?? '', /1 order\(s\) matching/, q);
      assert.match(results ?? '', /Ana Sørensen/, q);
    }
    await page.fill('input[name=q]', 'nobody@example.org');
    await Promise.all([page.waitForURL(/\/support\?q=/), page.click('button[type=submit]')]);
    assert.match((await page.textContent('#results')) ?? '', /No order matches/);
  });

  it('opens the order, downloads one PDF and all merged in seat order', async () => {
    await page.goto(`${base}/support?q=R-20027`);
    await Promise.all([page.waitForURL(/\/support\/order\?id=R-20027/), page.click('#results a:text("R-20027")')]);
    assert.equal(await page.textContent('#order-id'), 'R-20027');
    const rows = await page.locator('#tickets tbody tr').allTextContents();
    assert.equal(rows.length, 2);
    assert.match(rows[0]!, /Seat 21/);
    assert.match(rows[1]!, /Seat 22/);
    assert.match((await page.textContent('#proofs')) ?? '', /https:\/\/example\.org\/proof\/R-20027-1\.png/);

    const [first] = await t.sql`select id from tickets where seat = '22'`;
    const one = await download(`#download-${first!.id}`);
    assert.equal(sha256(one), sha256(pdfs.get('22')!));
    const all = await download('#download-all');
    assert.deepEqual(
      (await pageSizes(all)).map(([w]) => w),
      [221, 222],
    );
  });

  it('e-mails the order’s PDFs to an address and shows the mail', async () => {
    await page.goto(`${base}/support/order?id=R-20027`);
    await page.fill('#email-form input[name=to]', 'buyer@example.org');
    await page.click('#email-form button');
    assert.match(page.url(), /queued=\d+/, await page.content());
    assert.match((await page.textContent('[role=status]')) ?? '', /E-mail queued \(job \d+\)/);
    const mail = await waitUntil('the mail to the buyer', () => smtp.mails.find((m) => m.to.includes('buyer@example.org')));
    assert.deepEqual(
      mail.attachments.map((a) => sha256(a.content)),
      [sha256(pdfs.get('21')!), sha256(pdfs.get('22')!)],
    );
    await waitUntil(
      'the mail to be recorded',
      async () => (await t.sql`select 1 from mails where to_address = 'buyer@example.org'`).length === 1,
    );
    await page.reload();
    assert.match((await page.textContent('#mail')) ?? '', /buyer@example\.org.*Your tickets for order R-20027/s);
  });

  it('lists a failed mail delivery and retries it', async () => {
    const [job] = await t.sql`
      insert into jobs (kind, payload, order_id, status, attempts, max_attempts, last_error)
      values ('mail.order_tickets', ${t.sql.json({ order_id: 'R-20027', to: 'gone@example.org', requested_by: 'test' })}, 'R-20027',
              'failed', 8, 8, '550 mailbox <gone@example.org> unavailable')
      returning id`;
    await page.goto(`${base}/support`);
    const failed = await page.textContent('#failed-mail');
    assert.match(failed ?? '', /550 mailbox <gone@example\.org> unavailable/);
    await page.screenshot({ path: SCREENSHOT.replace('order', 'front'), fullPage: true });
    await Promise.all([page.waitForURL(/retried=/), page.click('#failed-mail button')]);
    assert.match((await page.textContent('[role=status]')) ?? '', new RegExp(`Mail job ${job!.id} is queued again`));
    await waitUntil('the retried mail', () => smtp.mails.find((m) => m.to.includes('gone@example.org')));
  });

  it('shows the webhook deliveries, the last error first, and opens it', async () => {
    await page.goto(`${base}/support`);
    await Promise.all([page.waitForURL(/\/support\/deliveries$/), page.click('header a:text("Deliveries")')]);
    assert.match((await page.textContent('#last-error')) ?? '', /order\.eticket_fulfilment.*rejected.*file is not a PDF/s);
    await page.selectOption('select[name=outcome]', 'applied');
    await Promise.all([page.waitForURL(/outcome=applied/), page.click('#delivery-filter button')]);
    assert.ok((await page.locator('#deliveries tbody tr').count()) >= 4);
    assert.doesNotMatch((await page.textContent('#deliveries')) ?? '', /rejected/);
    await page.goto(`${base}/support/deliveries`);
    await Promise.all([page.waitForURL(/\/support\/delivery\?id=/), page.click('#last-error a')]);
    assert.match((await page.textContent('#outcome')) ?? '', /rejected \(HTTP 200\)/);
    assert.match((await page.textContent('#headers')) ?? '', /tixstock-version\s*v1/);
    await page.screenshot({ path: SCREENSHOT.replace('order', 'delivery'), fullPage: true });
  });

  it('renders (screenshot)', async () => {
    await page.goto(`${base}/support/order?id=R-20027`);
    const png = await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    assert.equal(width, 1200);
    assert.ok(height >= 600, `height ${height}`);
    assert.ok(png.length > 20_000, `a rendered page, not a blank one (${png.length} bytes)`);
    for (const selector of ['#order-id', '#tickets table', '#download-all', '#email-form']) {
      const box = await page.locator(selector).boundingBox();
      assert.ok(box && box.width > 0 && box.height > 0, `${selector} is laid out`);
    }
  });
});
