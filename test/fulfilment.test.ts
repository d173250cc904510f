// order.eticket_fulfilment / order.mobile_ticket_fulfilment against a real database, with real
// PDFs: stored byte for byte, counted, not stored twice, merged in seat order; bad files are
// business failures that attach nothing.
import assert from 'node:assert/strict';
import { PDFDocument } from 'pdf-lib';
import { api, fixture, resetDatabase, sendWebhook, testApp, webhook } from './helpers.js';
import { fulfilment, makePdf, pageSizes, sha256, type TestApp } from './tickets-helpers.js';

describe('fulfilment webhooks', () => {
  let app: TestApp['app'];
  let sql: TestApp['sql'];
  before(() => ({ app, sql } = testApp()));
  beforeEach(() => resetDatabase());

  const tickets = (orderId: string) =>
    sql`select id, kind, row, seat, bytes, pages, sha256 from tickets where order_id = ${orderId} order by id`;
  const outcomeOf = async (id: string) =>
    (await sql`select outcome, order_id from deliveries where order_id = ${id} order by id desc limit 1`)[0];

  it('stores the PHP-style fixture PDF byte for byte and answers as the docs require', async () => {
    const res = await sendWebhook(app, fixture('order.eticket_fulfilment.json'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body), ['external_id', 'order_status', 'success', 'message']);
    assert.equal(res.body.external_id, 'R-20027');
    assert.equal(res.body.success, true);
    assert.equal(res.body.order_status, null, 'the order was unknown until now: no status yet');

    const order = await api(app).get('/api/orders/R-20027');
    assert.equal(order.status, 200);
    assert.equal(order.body.tickets.length, 1);
    const t = order.body.tickets[0];
    const original = fixture('ticket.pdf');
    assert.deepEqual(
      { listing_id: t.listing_id, row: t.row, seat: t.seat, bytes: t.bytes, sha256: t.sha256, pages: t.pages },
      { listing_id: '300001', row: 'F', seat: '21', bytes: original.length, sha256: sha256(original), pages: 1 },
    );
    assert.ok(!Number.isNaN(Date.parse(t.received_at)));

    const pdf = await api(app)
      .get(`/api/tickets/${t.id}.pdf`)
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      });
    assert.equal(pdf.status, 200);
    assert.match(pdf.headers['content-type']!, /^application\/pdf/);
    assert.match(pdf.headers['content-disposition']!, /attachment; filename="?R-20027-ticket-\d+\.pdf"?$/);
    assert.ok(Buffer.compare(pdf.body as Buffer, original) === 0, 'the stored PDF is the one sent');
  });

  it('attaches to an order known from order.update and replies with its status', async () => {
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    const res = await sendWebhook(app, fixture('order.eticket_fulfilment.json')).expect(200);
    assert.equal(res.body.order_status, 'Approved');
    const order = await api(app).get('/api/orders/R-20027').expect(200);
    assert.equal(order.body.customer_email, 'ana@example.org');
    assert.equal(order.body.tickets.length, 1);
  });

  it('does not store the same PDF twice for one order (a resend with other fields)', async () => {
    const pdf = await makePdf('R-1 F21');
    const first = await sendWebhook(app, fulfilment('eticket', { order_id: 'R-1', seat: '21' }, pdf)).expect(200);
    assert.equal(first.body.success, true);
    const again = await sendWebhook(app, fulfilment('eticket', { order_id: 'R-1', seat: '21', extra: 'resent' }, pdf)).expect(
      200,
    );
    assert.equal(again.body.success, true);
    assert.match(again.body.message, /already attached as ticket/);
    assert.equal((await tickets('R-1')).length, 1);
    // and only one notice was queued
    const jobs = await sql`select count(*)::int as n from jobs where order_id = 'R-1'`;
    assert.equal(jobs[0]!.n, 1);
    // the same PDF on another order is another ticket
    await sendWebhook(app, fulfilment('eticket', { order_id: 'R-2' }, pdf)).expect(200);
    assert.equal((await tickets('R-2')).length, 1);
  });

  it('an exact retry (same bytes) is answered from the log and stores nothing new', async () => {
    const body = fulfilment('eticket', { order_id: 'R-3' }, await makePdf('R-3'));
    const a = await sendWebhook(app, body).expect(200);
    const b = await sendWebhook(app, body).expect(200);
    assert.deepEqual(b.body, a.body);
    assert.equal((await tickets('R-3')).length, 1);
    const outcomes = await sql`select outcome from deliveries where order_id = 'R-3' order by id`;
    assert.deepEqual(
      outcomes.map((r) => r.outcome),
      ['applied', 'duplicate'],
    );
  });

  const refusals: [string, () => Promise<Buffer>, RegExp][] = [
    [
      'a file that is not base64',
      async () => fulfilment('eticket', { order_id: 'R-BAD', file: 'not base64 at all!' }),
      /file is not valid base64/,
    ],
    [
      'base64 with a character outside the alphabet',
      async () => {
        const b64 = Buffer.from(await makePdf('x')).toString('base64');
        return fulfilment('eticket', { order_id: 'R-BAD', file: `${b64.slice(0, 40)}*${b64.slice(41)}` });
      },
      /not valid base64: it contains "\*" at position 40/,
    ],
    [
      'truncated base64',
      async () => {
        const b64 = Buffer.from(await makePdf('x')).toString('base64');
        return fulfilment('eticket', { order_id: 'R-BAD', file: b64.slice(0, b64.length - 3) });
      },
      /not valid base64: its length/,
    ],
    [
      'base64 of something that is not a PDF',
      async () =>
        fulfilment('eticket', {
          order_id: 'R-BAD',
          file: Buffer.from('<html>this is a web page, not a ticket</html>').toString('base64'),
        }),
      /file is not a PDF: there is no %PDF- header/,
    ],
    [
      'a PDF header with garbage behind it',
      async () =>
        fulfilment('eticket', { order_id: 'R-BAD', file: Buffer.from('%PDF-1.7\n' + 'garbage '.repeat(50)).toString('base64') }),
      /file is not a PDF/,
    ],
    // Files of 64 KB or more are read from the body's bytes (src/json-bytes.ts): same verdicts.
    [
      'a large file with a character outside the alphabet',
      async () => fulfilment('eticket', { order_id: 'R-BAD', file: `${'QUJD'.repeat(25_000)}*AB=` }),
      /not valid base64: it contains "\*" at position 100000/,
    ],
    [
      'a large truncated file',
      async () => fulfilment('eticket', { order_id: 'R-BAD', file: 'QUJD'.repeat(25_000).slice(0, -1) }),
      /not valid base64: its length \(99999\)/,
    ],
    [
      'an e-ticket with an empty file',
      async () => fulfilment('eticket', { order_id: 'R-BAD', file: '' }),
      /file is empty: an e-ticket fulfilment must carry/,
    ],
    ['an e-ticket with no file at all', async () => fulfilment('eticket', { order_id: 'R-BAD' }), /file is empty/],
    [
      'a mobile fulfilment with neither file nor proof URLs',
      async () => fulfilment('mobile', { order_id: 'R-BAD', file: '' }),
      /nothing to attach/,
    ],
  ];
  for (const [what, body, message] of refusals) {
    it(`refuses ${what}: success false, logged as rejected, nothing attached`, async () => {
      const res = await sendWebhook(app, await body());
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.success, false);
      assert.equal(res.body.external_id, 'R-BAD');
      assert.match(res.body.message, message);
      assert.deepEqual(res.body.errors, [res.body.message]);
      assert.equal((await outcomeOf('R-BAD'))?.outcome, 'rejected');
      assert.equal((await tickets('R-BAD')).length, 0);
      assert.equal((await sql`select count(*)::int as n from orders where id = 'R-BAD'`)[0]!.n, 0);
      assert.equal((await sql`select count(*)::int as n from jobs`)[0]!.n, 0);
      await api(app).get('/api/orders/R-BAD').expect(404);
    });
  }

  it('refuses a bad file for a known order with that order’s status', async () => {
    await sendWebhook(app, fixture('order.update.json')).expect(200);
    const res = await sendWebhook(app, fulfilment('eticket', { order_id: 'R-20027', file: 'AAAA' })).expect(200);
    assert.equal(res.body.success, false);
    assert.equal(res.body.order_status, 'Approved');
  });

  it('a body that fails validation (no order_id) is a 400, not a business failure', async () => {
    const res = await sendWebhook(app, webhook('order.eticket_fulfilment', { id: '1', file: '' }));
    assert.equal(res.status, 400);
    assert.match(res.body.message, /data\.order_id/);
  });

  it('keeps proof URLs of a mobile fulfilment without a file (PHP-style fixture)', async () => {
    const res = await sendWebhook(app, fixture('order.mobile_ticket_fulfilment.json')).expect(200);
    assert.equal(res.body.success, true, JSON.stringify(res.body));
    const order = await api(app).get('/api/orders/R-20027').expect(200);
    assert.deepEqual(order.body.proof_file_urls, ['https://example.org/proof/R-20027-1.png']);
    assert.equal(order.body.tickets.length, 0);
    // a second webhook with the same URL does not list it twice
    await sendWebhook(
      app,
      fulfilment('mobile', {
        order_id: 'R-20027',
        seat: 23,
        proof_file_url: ['https://example.org/proof/R-20027-1.png', 'https://example.org/proof/R-20027-2.png'],
      }),
    ).expect(200);
    const again = await api(app).get('/api/orders/R-20027').expect(200);
    assert.deepEqual(again.body.proof_file_urls, [
      'https://example.org/proof/R-20027-1.png',
      'https://example.org/proof/R-20027-2.png',
    ]);
  });

  it('stores a mobile ticket PDF with loose field types (int seat, "true" general admission)', async () => {
    const pdf = await makePdf('mobile', { pages: 2 });
    const res = await sendWebhook(
      app,
      fulfilment('mobile', { order_id: 'R-M', id: 300002, seat: 7, general_admission: 'true' }, pdf),
    ).expect(200);
    assert.equal(res.body.success, true);
    const [t] = await sql`select kind, seat, listing_id, general_admission, pages from tickets where order_id = 'R-M'`;
    assert.deepEqual({ ...t }, { kind: 'mobile', seat: '7', listing_id: '300002', general_admission: true, pages: 2 });
  });

  it('merges an order’s tickets into one PDF in seat order', async () => {
    // Widths tell the tickets apart in the merged file: seat n is 100+n points wide.
    const seats = ['10', '9', '2', '21'];
    for (const seat of seats) {
      const pdf = await makePdf(`seat ${seat}`, { width: 100 + Number(seat), pages: seat === '9' ? 2 : 1 });
      await sendWebhook(app, fulfilment('eticket', { order_id: 'R-MERGE', seat }, pdf)).expect(200);
    }
    const res = await api(app)
      .get('/api/orders/R-MERGE/tickets.pdf')
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    assert.match(res.headers['content-type']!, /^application\/pdf/);
    assert.match(res.headers['content-disposition']!, /filename="?R-MERGE-tickets\.pdf"?$/);
    const widths = (await pageSizes(res.body as Buffer)).map(([w]) => w);
    assert.deepEqual(widths, [102, 109, 109, 110, 121]);
    const order = await api(app).get('/api/orders/R-MERGE').expect(200);
    assert.deepEqual(
      order.body.tickets.map((t: { seat: string }) => t.seat),
      ['2', '9', '10', '21'],
    );
  });

  it('accepts a PDF of over 20 MB within WEBHOOK_BODY_LIMIT and returns it intact', async function () {
    this.timeout(60_000);
    const doc = await PDFDocument.create();
    doc.addPage([300, 144]);
    // An incompressible 21 MB stream object, as a scanned ticket's image would be.
    const blob = Buffer.alloc(21 * 1024 * 1024);
    for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
    doc.context.register(doc.context.stream(blob));
    const pdf = Buffer.from(await doc.save({ useObjectStreams: false }));
    assert.ok(pdf.length > 21 * 1024 * 1024);
    const res = await sendWebhook(app, fulfilment('eticket', { order_id: 'R-BIG' }, pdf));
    assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
    assert.equal(res.body.success, true, res.body.message);
    const [t] = await sql`select id, bytes, sha256 from tickets where order_id = 'R-BIG'`;
    assert.equal(t!.bytes, pdf.length);
    assert.equal(t!.sha256, sha256(pdf));
    const back = await api(app)
      .get(`/api/tickets/${t!.id}.pdf`)
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    assert.equal(sha256(back.body as Buffer), sha256(pdf));
  });
});
