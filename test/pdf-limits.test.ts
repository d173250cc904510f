// Hostile PDFs from brokers: each is checked in a PDF worker under limits (time, heap, objects,
// inflated bytes) and refused as a business failure while /healthz keeps answering; a retry is
// answered from the log without loading its PDF again; "Download all" of an order holding a bad
// PDF answers a clear error without blocking the process.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createDeflate } from 'node:zlib';
import { PDFDocument } from 'pdf-lib';
import request from 'supertest';
import { pdfWorkers } from '../src/tickets/pdf-workers.js';
import { api, fixture, resetDatabase, sendWebhook, testApp } from './helpers.js';
import { fulfilment, makePdf, sha256, type TestApp } from './tickets-helpers.js';

const MB = 2 ** 20;

/** A valid one-page PDF (no object streams), to build the hostile ones on. */
async function onePagePdf(): Promise<Buffer> {
  const doc = await PDFDocument.create();
  doc.addPage([300, 144]);
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}

/** A valid PDF followed by `count` copies of `line`, before a trailer: a bogus xref table when
 * the lines are xref entries, a run of broken objects when they are object headers. */
async function withLines(head: string, line: string, count: number): Promise<Buffer> {
  const base = await onePagePdf();
  const one = Buffer.from(line);
  const lines = Buffer.alloc(one.length * count);
  for (let i = 0; i < count; i++) one.copy(lines, i * one.length);
  return Buffer.concat([
    base,
    Buffer.from(head),
    lines,
    Buffer.from(`trailer\n<< /Size ${count} >>\nstartxref\n${base.length}\n%%EOF\n`),
  ]);
}

/** A huge bogus xref table: `entries` entries of 6 bytes each. */
const bogusXrefPdf = (entries: number) => withLines(`xref\n0 ${entries}\n`, '0 0 f\n', entries);

const deflated: Record<number, Promise<Buffer>> = {};

/** An object stream's content: one object offset, then `mb` MB of blanks, deflated in steps. */
async function deflateBlanks(mb: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const packed: Buffer[] = [];
  deflate.on('data', (c: Buffer) => packed.push(c));
  const blanks = Buffer.alloc(MB, 0x20);
  deflate.write(Buffer.from('1000 0 '));
  for (let i = 0; i < mb; i++) deflate.write(blanks);
  deflate.end();
  await once(deflate, 'end');
  return Buffer.concat(packed);
}

/** A valid PDF plus an object stream whose content inflates to `inflatedMb` MB; `label` makes the
 * bytes (and so the webhook) unique. Small on disk: deflate packs the blanks ~1000:1. */
async function inflatingPdf(inflatedMb: number, label = ''): Promise<Buffer> {
  const base = await onePagePdf();
  const stream = await (deflated[inflatedMb] ??= deflateBlanks(inflatedMb));
  const at = base.lastIndexOf('%%EOF');
  return Buffer.concat([
    base.subarray(0, at),
    Buffer.from(`%${label}\n99 0 obj\n<< /Type /ObjStm /N 1 /First 8 /Filter /FlateDecode /Length ${stream.length} >>\nstream\n`),
    stream,
    Buffer.from('\nendstream\nendobj\n%%EOF\n'),
  ]);
}

/** `work`, with /healthz asked again and again until it is done; counts the answers that came
 * while a PDF worker was busy (an event loop blocked by the parse answers none then; here it
 * answered 30-1400 times, so at least 1 is a generous bound). */
async function healthzDuring<T>(
  app: TestApp['app'],
  pool: ReturnType<typeof pdfWorkers>,
  work: Promise<T>,
): Promise<{ result: T; answers: number; whileBusy: number }> {
  let done = false;
  let answers = 0;
  let whileBusy = 0;
  const pinging = (async () => {
    while (!done) {
      await request(app).get('/healthz').expect(200);
      answers++;
      if (pool.counts.busy > 0) whileBusy++;
    }
  })();
  try {
    return { result: await work, answers, whileBusy };
  } finally {
    done = true;
    await pinging;
  }
}

describe('PDF limits', function () {
  this.timeout(120_000);
  let app: TestApp['app'];
  let sql: TestApp['sql'];
  let config: TestApp['config'];
  before(() => ({ app, sql, config } = testApp()));
  beforeEach(() => resetDatabase());

  const deliveryOf = async (orderId: string) =>
    (await sql`select outcome, reply from deliveries where order_id = ${orderId} order by id desc limit 1`)[0];
  const ticketCount = async (orderId: string) =>
    Number((await sql`select count(*) from tickets where order_id = ${orderId}`)[0]!.count);

  it('refuses a PDF with a huge bogus xref table (success false, logged rejected) while /healthz answers', async () => {
    const pdf = await bogusXrefPdf(2_000_000);
    const pool = pdfWorkers(config);
    const { result: res, whileBusy } = await healthzDuring(
      app,
      pool,
      sendWebhook(app, fulfilment('eticket', { order_id: 'R-XREF' }, pdf)),
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.success, false);
    assert.match(res.body.message, /^file is refused: it has more than 100000 objects or xref entries/);
    assert.deepEqual(res.body.errors, [res.body.message]);
    assert.equal((await deliveryOf('R-XREF'))!.outcome, 'rejected');
    assert.equal(await ticketCount('R-XREF'), 0);
    assert.ok(whileBusy >= 1, `/healthz answered ${whileBusy} time(s) during the check`);
  });

  it('refuses a PDF whose object stream inflates to hundreds of MB while /healthz answers', async () => {
    const pdf = await inflatingPdf(300);
    assert.ok(pdf.length < 1 * MB, `${pdf.length} bytes on disk`);
    const pool = pdfWorkers(config);
    const { result: res, whileBusy } = await healthzDuring(
      app,
      pool,
      sendWebhook(app, fulfilment('eticket', { order_id: 'R-BOMB' }, pdf)),
    );
    assert.equal(res.body.success, false, JSON.stringify(res.body));
    assert.match(res.body.message, /^file is refused: its object streams inflate to more than 64 MB/);
    assert.equal((await deliveryOf('R-BOMB'))!.outcome, 'rejected');
    assert.equal(await ticketCount('R-BOMB'), 0);
    assert.ok(whileBusy >= 1, `/healthz answered ${whileBusy} time(s) during the check`);
  });

  it('checks 8 bad PDFs sent at once at most PDF_WORKERS at a time, all refused, /healthz answering', async () => {
    // A deadline long enough for all 8 to take their turn in 2 workers on a busy machine: this is
    // about the pool, not about the deadline (a webhook past it is answered 503, not applied).
    const patient = testApp({ WEBHOOK_DEADLINE_MS: '120000' });
    const pool = pdfWorkers(patient.config);
    const pdfs = await Promise.all([...Array(8).keys()].map((i) => inflatingPdf(300, `copy ${i}`)));
    pool.counts.peakBusy = 0;
    const { result: replies, whileBusy } = await healthzDuring(
      patient.app,
      pool,
      Promise.all(pdfs.map((pdf, i) => sendWebhook(patient.app, fulfilment('eticket', { order_id: `R-EIGHT-${i}` }, pdf)))),
    );
    for (const res of replies)
      assert.match(res.body.message, /^file is refused: its object streams inflate/, JSON.stringify(res.body));
    assert.ok(pool.counts.peakBusy >= 1 && pool.counts.peakBusy <= config.PDF_WORKERS, `peak ${pool.counts.peakBusy} at once`);
    assert.ok(whileBusy >= 1, `/healthz answered ${whileBusy} time(s) during the checks`);
  });

  it('counts objects inside object streams and xref stream entries against PDF_MAX_OBJECTS', async () => {
    const strict = testApp({ PDF_MAX_OBJECTS: '20' });
    // 14 objects at the top (12 page contents, the object stream, the xref stream), 16 more
    // inside the object stream, and about 30 xref stream entries.
    const pdf = await makePdf('objects', { pages: 12 });
    const res = await sendWebhook(strict.app, fulfilment('eticket', { order_id: 'R-OBJ' }, pdf)).expect(200);
    assert.equal(
      res.body.message,
      'file is refused: it has more than 20 objects or xref entries, beyond what a ticket PDF needs',
    );
    const fine = await sendWebhook(app, fulfilment('eticket', { order_id: 'R-OBJ' }, pdf)).expect(200);
    assert.equal(fine.body.success, true, fine.body.message);
  });

  it('answers a retry of an applied fulfilment from the log without loading its PDF again', async () => {
    const pool = pdfWorkers(config);
    const body = fixture('order.eticket_fulfilment.json');
    const first = await sendWebhook(app, body).expect(200);
    assert.equal(first.body.success, true, first.body.message);
    const jobs = pool.counts.jobs;
    const retry = await sendWebhook(app, body).expect(200);
    assert.deepEqual(retry.body, first.body);
    assert.equal(pool.counts.jobs, jobs, 'no PDF job for the retry');
    const outcomes = await sql`select outcome from deliveries order by id`;
    assert.deepEqual(
      outcomes.map((r) => r.outcome),
      ['applied', 'duplicate'],
    );
  });

  it("a check cut short by the webhook's own deadline is a 503, not recorded, not a refusal of the file", async () => {
    const short = testApp({ WEBHOOK_DEADLINE_MS: '2500', PDF_TIMEOUT_MS: '60000', PDF_MAX_OBJECTS: '100000000' });
    const pdf = await withLines('', '1 0 obj\n', 200_000);
    const before = (await sql`select count(*)::int as n from deliveries where order_id = 'R-LATE'`)[0]!.n;
    const res = await sendWebhook(short.app, fulfilment('eticket', { order_id: 'R-LATE' }, pdf));
    assert.equal(res.status, 503, res.text);
    assert.equal((await sql`select count(*)::int as n from deliveries where order_id = 'R-LATE'`)[0]!.n, before);
  });

  it('refuses a PDF that takes longer than PDF_TIMEOUT_MS, replacing its worker', async () => {
    const slow = testApp({ PDF_TIMEOUT_MS: '500', PDF_MAX_OBJECTS: '100000000' });
    const pool = pdfWorkers(slow.config);
    // Broken object headers: pdf-lib looks for each one's end through the rest of the file.
    const pdf = await withLines('', '1 0 obj\n', 200_000);
    const res = await sendWebhook(slow.app, fulfilment('eticket', { order_id: 'R-SLOW' }, pdf)).expect(200);
    assert.equal(res.body.success, false);
    assert.equal(res.body.message, 'file is refused: loading it takes longer than 0.5 s, beyond what a ticket PDF needs');
    assert.equal(pool.counts.timedOut, 1);
    const started = pool.counts.started;
    const good = await sendWebhook(slow.app, fulfilment('eticket', { order_id: 'R-SLOW' }, await makePdf('after'))).expect(200);
    assert.equal(good.body.success, true, good.body.message);
    assert.equal(pool.counts.started, started + 1, 'a new worker took the next PDF');
  });

  it('refuses a PDF that needs more than PDF_WORKER_MEMORY_MB, replacing its worker', async () => {
    const small = testApp({ PDF_WORKER_MEMORY_MB: '32' });
    const pdf = await withLines('5 0 obj\n[', '[]', 1_000_000);
    const res = await sendWebhook(small.app, fulfilment('eticket', { order_id: 'R-HEAP' }, pdf)).expect(200);
    assert.equal(res.body.success, false);
    assert.match(res.body.message, /^file is refused: loading it needs more than 32 MB of memory/);
    const good = await sendWebhook(small.app, fulfilment('eticket', { order_id: 'R-HEAP' }, await makePdf('after'))).expect(200);
    assert.equal(good.body.success, true, good.body.message);
  });

  it('"Download all" of an order holding a PDF that cannot be loaded answers a clear error, /healthz answering', async () => {
    const good = await makePdf('good');
    await sendWebhook(app, fulfilment('eticket', { order_id: 'R-DL', seat: '1' }, good)).expect(200);
    // A stored PDF that would be refused today (stored before the limits, or the limits lowered).
    const bad = await bogusXrefPdf(400_000);
    const [row] = await sql`
      insert into tickets (order_id, delivery_id, kind, row, seat, pdf, sha256, bytes, pages)
      select order_id, delivery_id, kind, 'F', '2', ${bad}, ${sha256(bad)}, ${bad.length}, 1 from tickets where order_id = 'R-DL'
      returning id`;
    const pool = pdfWorkers(config);
    const { result: res, whileBusy } = await healthzDuring(app, pool, api(app).get('/api/orders/R-DL/tickets.pdf'));
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.success, false);
    assert.match(
      res.body.message,
      new RegExp(
        `^the tickets of order R-DL cannot be merged into one PDF: ticket ${row!.id} \\(row F, seat 2\\) cannot be loaded: it has more than 100000 objects`,
      ),
    );
    assert.ok(whileBusy >= 1, `/healthz answered ${whileBusy} time(s) during the merge`);
    // Each ticket can still be downloaded on its own.
    await api(app).get(`/api/tickets/${row!.id}.pdf`).expect(200);
    // The support page's "Download all" says the same on a page.
    const page = await request(app).get('/support/order/tickets.pdf?id=R-DL').auth('support', 'test-support-password');
    assert.equal(page.status, 422);
    assert.match(
      page.text,
      new RegExp(`Download all is not possible: the tickets of order R-DL cannot be merged into one PDF: ticket ${row!.id}`),
    );
  });
});
