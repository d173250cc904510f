// Mail through a real SMTP server (smtp-server on 127.0.0.1): the fulfilment notice with the PDF
// attached, an order's PDFs to any address, mail recorded to the log without SMTP_URL, and a
// failing mail server that never fails a webhook.
import assert from 'node:assert/strict';
import { fixture, resetDatabase, sendWebhook, testApp } from './helpers.js';
import { queueOrderTickets } from '../src/jobs/mails.js';
import { mailJobHandlers } from '../src/support/mail-jobs.js';
import { startJobWorker, type JobWorker } from '../src/jobs/worker.js';
import { freePort } from './helpers.js';
import { fulfilment, makePdf, sha256, sleep, startSmtp, waitUntil, type TestSmtp } from './tickets-helpers.js';

describe('mail', () => {
  let smtp: TestSmtp;
  let worker: JobWorker | undefined;
  before(async () => {
    smtp = await startSmtp();
  });
  after(() => smtp.close());
  beforeEach(async () => {
    await resetDatabase();
    smtp.mails.length = 0;
    smtp.refuse = null;
  });
  afterEach(async () => {
    await worker?.stop(2000);
    worker = undefined;
  });

  const env = () => ({
    SMTP_URL: smtp.url,
    SUPPORT_EMAIL: 'support@reseller.example',
    MAIL_FROM: 'Tickets <tickets@reseller.example>',
  });
  const start = (t: ReturnType<typeof testApp>, opts = {}) =>
    (worker = startJobWorker({
      sql: t.sql,
      config: t.config,
      handlers: mailJobHandlers,
      pollMs: 20,
      retryBaseMs: 20,
      maxRetryMs: 100,
      ...opts,
    }));
  const jobs = (t: ReturnType<typeof testApp>) => t.sql`select kind, status, attempts, last_error from jobs order by id`;

  it('sends the fulfilment notice to SUPPORT_EMAIL with the PDF attached, after the webhook commits', async () => {
    const t = testApp(env());
    const res = await sendWebhook(t.app, fixture('order.eticket_fulfilment.json')).expect(200);
    assert.equal(res.body.success, true);
    start(t);
    const [mail] = await waitUntil('the notice', () => smtp.mails.length >= 1 && smtp.mails);
    assert.deepEqual(mail!.to, ['support@reseller.example']);
    assert.equal(mail!.from, 'tickets@reseller.example');
    assert.match(mail!.headers.subject!, /Ticket received for order R-20027 \(row F seat 21\)/);
    assert.match(mail!.headers['message-id']!, /^<tixstock-job-\d+@reseller\.example>$/);
    assert.match(mail!.text, /listing 300001, row F seat 21, 1 page\(s\)/);
    assert.equal(mail!.attachments.length, 1);
    const [pdf] = mail!.attachments;
    assert.equal(pdf!.contentType, 'application/pdf');
    assert.match(pdf!.filename, /^R-20027-ticket-\d+\.pdf$/);
    assert.ok(pdf!.content.equals(fixture('ticket.pdf')), 'the attachment is the PDF Tixstock sent, byte for byte');

    await waitUntil('the job to be done', async () => (await jobs(t))[0]?.status === 'done');
    const [row] = await t.sql`select to_address, transport, attachments from mails`;
    assert.equal(row!.transport, 'smtp');
    assert.equal(row!.to_address, 'support@reseller.example');
    assert.equal(row!.attachments[0].sha256, sha256(fixture('ticket.pdf')));
  });

  it('sends all of an order’s PDFs, in seat order, to an address support gives', async () => {
    const t = testApp(env());
    const pdfs = new Map<string, Buffer>();
    for (const seat of ['12', '3']) {
      pdfs.set(seat, await makePdf(`seat ${seat}`));
      await sendWebhook(t.app, fulfilment('eticket', { order_id: 'R-7', seat }, pdfs.get(seat))).expect(200);
    }
    await t.sql`update jobs set status = 'done'`; // only the requested mail is of interest here
    await queueOrderTickets(t.sql, { orderId: 'R-7', to: 'buyer@example.org', requestedBy: 'test' });
    start(t);
    const [mail] = await waitUntil('the mail', () => smtp.mails.length >= 1 && smtp.mails);
    assert.deepEqual(mail!.to, ['buyer@example.org']);
    assert.match(mail!.headers.subject!, /Your tickets for order R-7/);
    assert.deepEqual(
      mail!.attachments.map((a) => sha256(a.content)),
      [sha256(pdfs.get('3')!), sha256(pdfs.get('12')!)],
    );
  });

  it('without SMTP_URL a mail is recorded as sent to the log, not dropped', async () => {
    const t = testApp({ SUPPORT_EMAIL: 'support@reseller.example' });
    await sendWebhook(t.app, fixture('order.eticket_fulfilment.json')).expect(200);
    start(t);
    await waitUntil('the job to be done', async () => (await jobs(t))[0]?.status === 'done');
    const [row] = await t.sql`select transport, to_address, subject, attachments from mails`;
    assert.equal(row!.transport, 'log');
    assert.equal(row!.to_address, 'support@reseller.example');
    assert.match(row!.subject, /R-20027/);
    assert.equal(row!.attachments.length, 1);
    assert.equal(smtp.mails.length, 0);
  });

  it('a refusing mail server fails no webhook; the mail is retried with back-off and sent once it accepts', async () => {
    const t = testApp(env());
    smtp.refuse = 'mailbox busy, try later';
    start(t);
    const res = await sendWebhook(t.app, fixture('order.eticket_fulfilment.json')).expect(200);
    assert.equal(res.body.success, true);
    const failing = await waitUntil('two failed attempts', async () => {
      const [j] = await jobs(t);
      return j && j.attempts >= 2 && j.status === 'pending' && j;
    });
    assert.match(failing.last_error, /mailbox busy/);
    assert.equal(smtp.mails.length, 0);
    smtp.refuse = null;
    await waitUntil('the mail', () => smtp.mails.length >= 1);
    await waitUntil('the job to be done', async () => (await jobs(t))[0]?.status === 'done');
    await sleep(200);
    assert.equal(smtp.mails.length, 1);
  });

  it('a mail server that is down: the job fails for good after its attempts and shows the error', async () => {
    const t = testApp({ ...env(), SMTP_URL: `smtp://127.0.0.1:${await freePort()}` });
    await sendWebhook(t.app, fixture('order.eticket_fulfilment.json')).expect(200);
    start(t, { retryBaseMs: 1, maxRetryMs: 5 });
    const failed = await waitUntil('the job to fail', async () => {
      const [j] = await jobs(t);
      return j?.status === 'failed' && j;
    });
    assert.equal(failed.attempts, 8);
    assert.match(failed.last_error, /ECONNREFUSED|connect/i);
    assert.equal((await t.sql`select count(*)::int as n from mails`)[0]!.n, 0);
  });
});
