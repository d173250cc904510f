// Uploads that cost little to refuse: an unsigned body is refused on its headers, never read;
// bodies are held within WEBHOOK_MEMORY_LIMIT bytes (503 before reading beyond it); slow uploads
// are ended by WEBHOOK_MIN_UPLOAD_RATE and the deadline, and while they are read they take no
// processing slot, so they never make signed webhooks wait or get 503.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Server } from 'node:http';
import { createApp } from '../src/app.js';
import { sign } from '../src/webhooks/signature.js';
import { addListing, api, resetDatabase, testConfig, testSql, TOKEN, webhook, withQuantity } from './helpers.js';
import { postWebhook, startServer, type ServerProcess } from './server-process.js';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssOf = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

interface Upload {
  /** The answer's status and body, and how many body bytes had been written when it came. */
  answered: Promise<{ status: number; text: string; written: number }>;
  /** Stops writing and closes the connection. */
  close(): void;
}

/** A POST to the receiver that writes `send` of its `length` bytes in `chunk`-byte pieces, one
 * every `everyMs`, and keeps the connection open (no end) until an answer comes or close(). */
function upload(
  url: string,
  o: { length: number; send: number; chunk: number; everyMs: number; headers: Record<string, string> },
): Upload {
  const { port } = new URL(url);
  let written = 0;
  let timer: NodeJS.Timeout | undefined;
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/webhooks/tixstock',
    headers: { 'Content-Type': 'application/json', 'Content-Length': String(o.length), ...o.headers },
  });
  const answered = new Promise<{ status: number; text: string; written: number }>((resolve, reject) => {
    req.on('response', (res) => {
      clearInterval(timer);
      const at = written;
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text, written: at }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  answered.catch(() => {});
  req.flushHeaders();
  const piece = Buffer.alloc(o.chunk, 'x');
  timer = setInterval(() => {
    if (written >= o.send) return clearInterval(timer);
    req.write(piece.subarray(0, Math.min(o.chunk, o.send - written)));
    written += Math.min(o.chunk, o.send - written);
  }, o.everyMs);
  return { answered, close: () => (clearInterval(timer), req.destroy()) };
}

describe('uploads: unsigned, slow and large bodies', function () {
  this.timeout(120_000);
  let server: ServerProcess;
  before(async () => {
    await resetDatabase();
    server = await startServer(); // the defaults: concurrency 8 + backlog 128
  });
  after(() => server?.stop());

  it('10 unsigned 45 MB uploads held open: 401 on their headers, their bodies never read (RSS barely moves)', async () => {
    const before = rssOf(server.proc.pid!);
    const uploads = Array.from({ length: 10 }, (_, i) =>
      upload(server.url, {
        length: 45 * MB,
        send: 44 * MB,
        chunk: MB,
        everyMs: 20,
        headers: i % 2 ? {} : { 'X-Tixstock-Signature': 'sha256=not-hex' }, // missing, or malformed
      }),
    );
    try {
      const answers = await Promise.all(uploads.map((u) => u.answered));
      const during = rssOf(server.proc.pid!);
      for (const a of answers) {
        assert.equal(a.status, 401, a.text);
        assert.match(JSON.parse(a.text).message, /X-Tixstock-Signature (header is missing|is malformed)/);
        assert.ok(a.written < 44 * MB, `answered before the body was sent (${a.written} bytes written)`);
      }
      // Reading them would hold 10 x 44 MB; bound generously.
      assert.ok(during - before < 100 * MB, `RSS ${Math.round(before / MB)} -> ${Math.round(during / MB)} MB`);
    } finally {
      for (const u of uploads) u.close();
    }
  });

  it('136 uploads at 1 byte/s (more than concurrency + backlog) are ended with 408, and signed webhooks meanwhile get no 503', async () => {
    const id = await addListing(createApp({ sql: testSql(), config: testConfig() }), withQuantity(100));
    // Well-formed signatures (that will not match): their bodies must be read before that is known.
    const slow = Array.from({ length: 136 }, () =>
      upload(server.url, {
        length: 1000,
        send: 1000,
        chunk: 1,
        everyMs: 1000,
        headers: { 'X-Tixstock-Signature': 'ab'.repeat(32) },
      }),
    );
    try {
      await sleep(1000); // all of them are being read
      const holds = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          postWebhook(server.url, webhook('ticket.hold', { external_id: id, hold_quantity: 1, n })),
        ),
      );
      assert.deepEqual(
        holds.map((h) => h.status),
        Array(20).fill(200),
        holds.map((h) => h.text).join('\n'),
      );
      const answers = await Promise.all(slow.map((u) => u.answered));
      for (const a of answers) {
        assert.equal(a.status, 408, a.text);
        assert.ok(a.written < 1000, 'ended before the body was complete');
      }
      assert.match(answers[0]!.text, /too slowly|deadline/);
      const listing = (
        await api(createApp({ sql: testSql(), config: testConfig() }))
          .get(`/api/listings/${id}`)
          .expect(200)
      ).body;
      assert.equal(listing.quantity, 80);
    } finally {
      for (const u of slow) u.close();
    }
  });
});

describe('uploads: WEBHOOK_MEMORY_LIMIT', () => {
  let server: Server;
  let url: string;
  before(async () => {
    await resetDatabase();
    const app = createApp({ sql: testSql(), config: testConfig({ WEBHOOK_MEMORY_LIMIT: '1mb', WEBHOOK_BODY_LIMIT: '1mb' }) });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  const event = (id: string, bytes: number) => webhook('event.update', { id, name: 'Budget', description: 'x'.repeat(bytes) });
  const eventExists = async (id: string) => (await testSql()`select 1 from events where id = ${id}`).length > 0;

  it('beyond the budget a new webhook is answered 503 + Retry-After before its body is read, and is not applied', async () => {
    // A: 700 KB, half sent, then held: its whole Content-Length is counted from the start.
    const a = event('E-BUDGET-A', 700 * 1024);
    const { port } = new URL(url);
    const reqA = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/webhooks/tixstock',
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': String(a.length),
        'X-Tixstock-Signature': sign(a, TOKEN),
      },
    });
    const answerA = new Promise<number>((resolve, reject) =>
      reqA.on('response', (r) => (r.resume(), resolve(r.statusCode!))).on('error', reject),
    );
    reqA.write(a.subarray(0, a.length >> 1));
    await sleep(200);

    // B: 600 KB with Content-Length, nothing of the body sent: refused on its headers.
    const b = upload(url, {
      length: 600 * 1024,
      send: 0,
      chunk: 1,
      everyMs: 1000,
      headers: { 'X-Tixstock-Signature': 'cd'.repeat(32) },
    });
    const answerB = await b.answered;
    b.close();
    assert.equal(answerB.status, 503, answerB.text);
    assert.equal(answerB.written, 0);
    assert.match(JSON.parse(answerB.text).message, /WEBHOOK_MEMORY_LIMIT/);

    // C: 600 KB chunked (no Content-Length): counted as it arrives, refused once over the budget.
    const c = event('E-BUDGET-C', 600 * 1024);
    const reqC = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/webhooks/tixstock',
      headers: {
        'Content-Type': 'application/json',
        'Transfer-Encoding': 'chunked',
        'X-Tixstock-Signature': sign(c, TOKEN),
      },
    });
    const answerC = new Promise<{ status: number; retryAfter: unknown }>((resolve, reject) =>
      reqC
        .on('response', (r) => (r.resume(), resolve({ status: r.statusCode!, retryAfter: r.headers['retry-after'] })))
        .on('error', reject),
    );
    reqC.end(c);
    assert.deepEqual(await answerC, { status: 503, retryAfter: '5' });

    reqA.end(a.subarray(a.length >> 1));
    assert.equal(await answerA, 200);
    // A's share is given back once it is answered: the same size fits again.
    const d = await postWebhook(url, event('E-BUDGET-D', 600 * 1024));
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(
      await Promise.all(['E-BUDGET-A', 'E-BUDGET-C', 'E-BUDGET-D'].map(eventExists)),
      [true, false, true],
      'A and D applied, C (answered 503) not',
    );
    assert.equal((await testSql()`select count(*)::int as n from deliveries where type = 'event.update'`)[0]!.n, 2);
  });

  it('a client that waits for 100 Continue is told to send its body only when it may be read', async () => {
    const { port } = new URL(url);
    const send = (body: Buffer, headers: Record<string, string>) =>
      new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
        let continued = false;
        const req = http.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/webhooks/tixstock',
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': String(body.length),
            Expect: '100-continue',
            ...headers,
          },
        });
        req.on('continue', () => ((continued = true), req.end(body)));
        req.on('response', (r) => (r.resume(), resolve({ status: r.statusCode!, continued })));
        req.on('error', reject);
        req.flushHeaders();
      });
    const big = event('E-CONTINUE-BIG', 1100 * 1024);
    assert.deepEqual(await send(big, { 'X-Tixstock-Signature': sign(big, TOKEN) }), { status: 413, continued: false });
    const small = event('E-CONTINUE', 1000);
    assert.deepEqual(await send(small, {}), { status: 401, continued: false });
    assert.deepEqual(await send(small, { 'X-Tixstock-Signature': sign(small, TOKEN) }), { status: 200, continued: true });
  });
});
