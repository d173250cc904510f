// The Tixstock client against the simulator over real HTTP: every call and its reply, every
// error kind from the simulator's faults and refusals, the 429 pause and the rate limit proven by
// counting the calls the simulator received, and log lines without the token or customer data.
import assert from 'node:assert/strict';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config.js';
import { allTickets, createTixstockClient, retryAbsolute, type TixstockClientOptions } from '../src/tixstock/client.js';
import { TixstockError, type AddOrderBody, type TixstockErrorKind } from '../src/tixstock/contract.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/tixstock/simulator.js';
import { freePort, TOKEN } from './helpers.js';

const ULID = /^[0-9a-hjkmnp-tv-z]{26}$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Line = { level: string; msg: string; fields: Record<string, unknown> };

function capture() {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      void lines.push({ level, msg, fields });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

function clientFor(sim: Simulator | string, env: Record<string, string> = {}, opts: TixstockClientOptions = {}) {
  const logs = capture();
  const config = loadConfig({
    TIXSTOCK_BEARER_TOKEN: `${TOKEN},older-token`,
    TIXSTOCK_API_URL: typeof sim === 'string' ? sim : sim.url,
    TIXSTOCK_API_TIMEOUT_MS: '600',
    ...env,
  });
  return { client: createTixstockClient(config, { log: logs.log, refuseProduction: true, ...opts }), lines: logs.lines };
}

async function failure(p: Promise<unknown>): Promise<TixstockError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof TixstockError, `expected a TixstockError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

async function fails(p: Promise<unknown>, kind: TixstockErrorKind): Promise<TixstockError> {
  const e = await failure(p);
  assert.equal(e.kind, kind, e.message);
  return e;
}

const orderBody = (orderId: string): AddOrderBody => ({
  order_id: orderId,
  order_status: 'Approved',
  datetime: '2027-02-02T10:15:00+0000',
  currency: 'GBP',
  customer: { id: 'c-1', first_name: 'Ana', last_name: 'Sorensen', email_address: 'ana.private@example.org' },
});

describe('Tixstock client', () => {
  let sim: Simulator;
  const started: Simulator[] = [];
  async function simulator(o: Partial<SimulatorOptions> = {}) {
    const s = await startSimulator({ token: TOKEN, ...o });
    started.push(s);
    return s;
  }
  before(async () => (sim = await simulator()));
  beforeEach(() => {
    sim.reset();
    sim.putListing({ id: 'L1', quantity: 10 });
  });
  after(() => Promise.all(started.map((s) => s.close())));

  describe('calls and replies', () => {
    it('hold: POST tickets/hold/{listing_id} {"quantity"} with the bearer token; hold_id from meta', async () => {
      const { client, lines } = clientFor(sim);
      const r = await client.hold('L1', 3);
      assert.match(r.holdId, ULID);
      assert.equal(r.data.quantity_available, 7);
      assert.equal(r.status, 200);
      assert.match(r.requestId ?? '', ULID);
      assert.equal(r.meta.type, 'ticket.hold');
      assert.equal(r.message, 'Ticket(s) has successfully been put on hold.');
      const call = sim.calls[0]!;
      assert.deepEqual(
        [call.method, call.path, call.body, call.auth],
        ['POST', 'tickets/hold/L1', { quantity: 3 }, `Bearer ${TOKEN}`],
      );
      assert.equal(sim.listing('L1')!.quantity, 7);
      assert.equal(lines.length, 1);
      assert.ok(!JSON.stringify(lines).includes(TOKEN), 'the token is never logged');
      assert.deepEqual(
        { ...lines[0]!.fields, ms: typeof lines[0]!.fields.ms },
        {
          method: 'POST',
          path: 'tickets/hold/{listing_id}',
          listing_id: 'L1',
          quantity: 3,
          status: 200,
          ms: 'number',
          tixstock_request_id: r.requestId,
        },
      );
    });

    it('release (default template tickets/release/{hold_id}/{release_quantity}) also sends both in the body', async () => {
      const { client } = clientFor(sim);
      const { holdId } = await client.hold('L1', 4);
      const r = await client.release(holdId, 1);
      assert.equal(r.data.quantity_available, 7);
      assert.equal(r.meta.type, 'ticket.release');
      const call = sim.calls[1]!;
      assert.equal(call.path, `tickets/release/${holdId}/1`);
      assert.deepEqual(call.body, { hold_id: holdId, release_quantity: 1 });
      assert.equal(sim.holds().find((h) => h.holdId === holdId)!.quantity, 3);
    });

    it('release with a configured template: tickets/release/{hold_id} and the quantity in the body only', async () => {
      const { client, lines } = clientFor(sim, { TIXSTOCK_RELEASE_PATH: 'tickets/release/{hold_id}' });
      const { holdId } = await client.hold('L1', 2);
      const r = await client.release(holdId, 2);
      assert.equal(r.data.quantity_available, 10);
      assert.equal(sim.calls[1]!.path, `tickets/release/${holdId}`);
      assert.equal(lines[1]!.fields.path, 'tickets/release/{hold_id}');
      assert.equal(sim.holds().find((h) => h.holdId === holdId)!.state, 'released');
    });

    it('addOrder: POST order/add/{hold_id}/{sold_quantity} with the order; the log line has no customer data', async () => {
      const { client, lines } = clientFor(sim);
      const { holdId } = await client.hold('L1', 2);
      const r = await client.addOrder(holdId, 2, orderBody('O-1'));
      assert.equal((r.data as { id: string }).id, 'O-1');
      assert.equal(sim.calls[1]!.path, `order/add/${holdId}/2`);
      assert.deepEqual(sim.calls[1]!.body, orderBody('O-1'));
      assert.equal(sim.orders()[0]!.status, 'Approved');
      assert.equal(sim.listing('L1')!.sold, 2);
      const text = JSON.stringify(lines);
      assert.ok(!text.includes('ana.private'), text);
      assert.ok(!text.includes('Sorensen'), text);
      assert.equal(lines[1]!.fields.order_id, 'O-1');
    });

    it('updateOrder and closeBroker', async () => {
      const { client } = clientFor(sim);
      const { holdId } = await client.hold('L1', 1);
      await client.addOrder(holdId, 1, orderBody('O-2'));
      const u = await client.updateOrder('O-2', { order_status: 'Dispatched' });
      assert.equal((u.data as { status: string }).status, 'Dispatched');
      assert.deepEqual(sim.calls[2]!.body, { order_status: 'Dispatched' });
      const c = await client.closeBroker('5512');
      assert.deepEqual(c.data, { broker_id: '5512' });
      assert.equal(sim.calls[3]!.path, 'broker/close/5512');
      assert.ok(sim.state.closedBrokers.includes('5512'));
    });

    it('getTickets pages with per_page=50 and listing_id; allTickets follows links.next to the end', async () => {
      const s = await simulator();
      for (let i = 1; i <= 120; i++) s.putListing({ id: `P${i}`, quantity: i });
      s.putListing({ id: null, quantity: 3 });
      const { client } = clientFor(s);
      const page = await client.getTickets({ page: 1 });
      assert.equal(s.calls[0]!.path, 'tickets/get?per_page=50&page=1');
      assert.equal(page.data.length, 50);
      assert.ok(page.links?.next);
      const one = await client.getTickets({ page: 1, listingId: 'P7' });
      assert.equal(one.data.length, 1);
      assert.equal((one.data[0]!.number_of_tickets_for_sale as { quantity_available: number }).quantity_available, 7);
      s.calls.length = 0;
      const all = [];
      for await (const l of allTickets(client)) all.push(l);
      assert.equal(all.length, 121);
      assert.equal(all.filter((l) => l.id === null).length, 1, 'a listing not yet published to us has no id');
      assert.equal(s.calls.length, 3);
      assert.equal((await client.getTickets({ page: 1, perPage: 500 })).data.length, 50);
      assert.equal(s.calls.at(-1)!.path, 'tickets/get?per_page=50&page=1', 'per_page is never above 50');
    });
  });

  describe('errors', () => {
    it('conflict: codes 108 (more than listed), 109 (more than held), 106 (not a whole number)', async () => {
      const { client } = clientFor(sim);
      const e = await fails(client.hold('L1', 11), 'conflict');
      assert.equal(e.code, '108');
      assert.deepEqual(e.messages, ['The on hold quantity cannot be greater then the listing quantity.']);
      const { holdId } = await client.hold('L1', 2);
      assert.equal((await fails(client.release(holdId, 3), 'conflict')).code, '109');
      assert.equal((await fails(client.hold('L1', 0), 'conflict')).code, '106');
      assert.equal(sim.listing('L1')!.quantity, 8);
    });

    it('not_found: an unknown listing, an unknown or expired hold, an unknown order', async () => {
      const { client } = clientFor(sim);
      const e = await fails(client.hold('nope', 1), 'not_found');
      assert.equal(e.httpStatus, 404);
      assert.deepEqual(e.messages, ['Sorry the resource cannot be found.']);
      await fails(client.release('01e32ems8ask9y28kk2a6g6yqs', 1), 'not_found');
      await fails(client.updateOrder('unknown-order', { order_status: 'Approved' }), 'not_found');
    });

    it('refused: validation errors (the list shape, at 422 and at 200) with every message', async () => {
      const { client } = clientFor(sim);
      const { holdId } = await client.hold('L1', 1);
      const bad = { ...orderBody('O-3'), currency: '', datetime: '' } as AddOrderBody;
      const e = await fails(client.addOrder(holdId, 1, bad), 'refused');
      assert.equal(e.httpStatus, 422);
      assert.deepEqual(e.messages, ['The datetime field is required.', 'The currency field is required.']);

      const at200 = await simulator({ validationStatus: 200 });
      at200.putListing({ id: 'L1', quantity: 5 });
      const c200 = clientFor(at200).client;
      const h = await c200.hold('L1', 1);
      const e200 = await fails(c200.addOrder(h.holdId, 1, bad), 'refused');
      assert.equal(e200.httpStatus, 200, 'a 2xx with a non-empty errors is no success');
      assert.equal(at200.orders().length, 0);
    });

    it('config: a wrong token (401) is logged loudly with log.error, without the token', async () => {
      const { client, lines } = clientFor(sim, {}, { token: 'wrong-secret-token' });
      const e = await fails(client.hold('L1', 1), 'config');
      assert.equal(e.httpStatus, 401);
      assert.equal(e.code, '401');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.level, 'error');
      assert.ok(!JSON.stringify(lines).includes('wrong-secret-token'));
      assert.equal(sim.listing('L1')!.quantity, 10);
    });

    it('the default logger: one JSON line per call on stdout/stderr, never the token', async () => {
      const written: string[] = [];
      const [out, err, level] = [process.stdout.write, process.stderr.write, process.env.LOG_LEVEL];
      const grab = (chunk: string | Uint8Array) => (written.push(String(chunk)), true);
      process.stdout.write = grab as typeof process.stdout.write;
      process.stderr.write = grab as typeof process.stderr.write;
      delete process.env.LOG_LEVEL;
      try {
        const config = loadConfig({ TIXSTOCK_BEARER_TOKEN: TOKEN, TIXSTOCK_API_URL: sim.url });
        await createTixstockClient(config).hold('L1', 1);
        await createTixstockClient(config, { token: 'wrong-secret-token' })
          .hold('L1', 1)
          .catch(() => undefined);
      } finally {
        process.stdout.write = out;
        process.stderr.write = err;
        if (level === undefined) delete process.env.LOG_LEVEL;
        else process.env.LOG_LEVEL = level;
      }
      const lines = written
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        lines.map((l) => [l.level, l.msg, l.status]),
        [
          ['info', 'tixstock call', 200],
          ['error', 'tixstock call', 401],
        ],
      );
      assert.ok(!written.join('').includes(TOKEN) && !written.join('').includes('wrong-secret-token'));
    });

    it('config: without a token nothing is sent', async () => {
      const { client, lines } = clientFor(sim, { TIXSTOCK_BEARER_TOKEN: '' });
      await fails(client.hold('L1', 1), 'config');
      assert.equal(sim.calls.length, 0);
      assert.equal(lines[0]!.level, 'error');
    });

    it('config: an answer in Production mode is refused when the client is told so', async () => {
      const prod = await simulator({ mode: 'Production' });
      prod.putListing({ id: 'L1', quantity: 5 });
      await fails(clientFor(prod).client.getTickets({ page: 1 }), 'config');
      const lenient = clientFor(prod, {}, { refuseProduction: false }).client;
      assert.equal((await lenient.getTickets({ page: 1 })).meta.mode, 'Production');
    });

    it('unavailable: 500, 503 and a refused connection; nothing applied', async () => {
      const { client } = clientFor(sim);
      sim.fault({ call: 'hold', kind: '500', times: 1 });
      sim.fault({ call: 'hold', kind: '503', times: 1 });
      assert.equal((await fails(client.hold('L1', 1), 'unavailable')).httpStatus, 500);
      const e = await fails(client.hold('L1', 1), 'unavailable');
      assert.deepEqual([e.httpStatus, e.code, e.messages], [503, '503', ['Tixstock API is currently in maintenance mode.']]);
      assert.equal(sim.listing('L1')!.quantity, 10);
      const closed = clientFor(`http://127.0.0.1:${await freePort()}/v1`).client;
      await fails(closed.hold('L1', 1), 'unavailable');
    });

    it("a proxy's 502 page is unavailable (nothing applied); its 504 is unknown_outcome (the gateway may have let it through)", async () => {
      const { client } = clientFor(sim);
      sim.fault({ call: 'hold', kind: '502', times: 1 });
      const e = await fails(client.hold('L1', 1), 'unavailable');
      assert.match(e.messages[0]!, /^HTTP 502: <html>/);
      assert.equal(sim.listing('L1')!.quantity, 10);
      sim.fault({ call: 'hold', kind: '504', times: 1 });
      await fails(client.hold('L1', 1), 'unknown_outcome');
      assert.equal(sim.listing('L1')!.quantity, 9);
    });

    for (const kind of ['reset', 'no_answer', 'applied_reset', 'applied_no_answer'] as const) {
      const applied = kind.startsWith('applied');
      it(`unknown_outcome on ${kind}: the hold was ${applied ? '' : 'not '}applied at Tixstock, and it is not retried`, async () => {
        const { client, lines } = clientFor(sim, { TIXSTOCK_API_TIMEOUT_MS: '400' });
        sim.fault({ call: 'hold', kind, times: 1 });
        await fails(client.hold('L1', 2), 'unknown_outcome');
        assert.equal(sim.calls.length, 1, 'sent once, never retried');
        assert.equal(sim.holds().filter((h) => h.listingId === 'L1' && h.state === 'held').length, applied ? 1 : 0);
        assert.equal(sim.listing('L1')!.quantity, applied ? 8 : 10);
        assert.equal(lines[0]!.level, 'warn');
        assert.equal(lines[0]!.fields.kind, 'unknown_outcome');
      });
    }

    it('unknown_outcome for an order/add whose answer is lost: the simulator has the order', async () => {
      const { client } = clientFor(sim, { TIXSTOCK_API_TIMEOUT_MS: '400' });
      const { holdId } = await client.hold('L1', 1);
      sim.fault({ call: 'order/add', kind: 'applied_no_answer' });
      await fails(client.addOrder(holdId, 1, orderBody('O-lost')), 'unknown_outcome');
      assert.ok(sim.state.orders.has('O-lost'));
    });

    it('a slow answer within the timeout is a success', async () => {
      const { client } = clientFor(sim, { TIXSTOCK_API_TIMEOUT_MS: '2000' });
      sim.fault({ call: 'broker/close', kind: 'slow', ms: 100, times: 1 });
      assert.deepEqual((await client.closeBroker('77')).data, { broker_id: '77' });
    });

    it('an answer slower than the idle time of kept-alive connections is a success on a reused connection', async () => {
      const { client } = clientFor(sim, { TIXSTOCK_API_TIMEOUT_MS: '2000' }, { keepAliveIdleMs: 100 });
      await client.getTickets({ page: 1 });
      sim.fault({ call: 'broker/close', kind: 'slow', ms: 300, times: 1 });
      assert.deepEqual((await client.closeBroker('77')).data, { broker_id: '77' });
    });
  });

  describe('every answer classified (a canned server)', () => {
    let canned: Server;
    let next: { status: number; body: string };
    let url: string;
    before(async () => {
      canned = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(next.status, { 'Content-Type': 'application/json' }).end(next.body));
      });
      await new Promise<void>((r) => canned.listen(0, '127.0.0.1', () => r()));
      url = `http://127.0.0.1:${(canned.address() as AddressInfo).port}/v1`;
    });
    after(() => new Promise<void>((r) => canned.close(() => r())));

    const cases: [number, unknown, TixstockErrorKind | 'ok', string[], string?][] = [
      [200, { data: { quantity_available: 1 }, meta: { hold_id: 'h1' }, errors: [] }, 'ok', []],
      [200, { data: { quantity_available: 1 }, meta: { hold_id: 'h1' }, errors: {} }, 'ok', []],
      [
        200,
        { data: { quantity_available: 1 }, meta: {} },
        'unknown_outcome',
        ['Tixstock accepted the hold without meta.hold_id: it cannot be released or ordered'],
      ],
      [200, 'not json', 'unknown_outcome', ['Tixstock answered 2xx without a JSON object: the call may have been applied']],
      [
        200,
        { data: [], meta: {}, errors: { title: 'Invalid authorization.', code: '111' } },
        'config',
        ['Invalid authorization.'],
        '111',
      ],
      [
        400,
        { data: [], meta: {}, errors: { title: 'Invalid IP address.', code: '103' } },
        'config',
        ['Invalid IP address.'],
        '103',
      ],
      [
        403,
        { data: [], meta: {}, errors: { title: 'Sorry, the request is forbidden.', code: '403' } },
        'config',
        ['Sorry, the request is forbidden.'],
        '403',
      ],
      [
        422,
        { data: [], meta: {}, errors: ['The a field is required.', 'The b field is required.'] },
        'refused',
        ['The a field is required.', 'The b field is required.'],
      ],
      [
        405,
        { data: [], meta: {}, errors: { title: 'Method not allowed.', code: '405' } },
        'refused',
        ['Method not allowed.'],
        '405',
      ],
      [
        400,
        {
          data: [],
          meta: {},
          errors: { title: 'Sorry there was an error reducing the ticket quantity please try again.', code: '107' },
        },
        'refused',
        ['Sorry there was an error reducing the ticket quantity please try again.'],
        '107',
      ],
      [
        200,
        {
          data: [],
          meta: {},
          errors: { title: 'Invalid quantity you must enter a whole number with a minimum value of 1.', code: '106' },
        },
        'conflict',
        ['Invalid quantity you must enter a whole number with a minimum value of 1.'],
        '106',
      ],
      [404, '', 'not_found', ['HTTP 404']],
      [502, '<html>bad gateway</html>', 'unavailable', ['HTTP 502: <html>bad gateway</html>']],
      [
        429,
        {
          data: [],
          meta: {},
          errors: { title: 'Too many request made, subsequent requests will be blocked for the next minute.', code: '429' },
        },
        'rate_limited',
        ['Too many request made, subsequent requests will be blocked for the next minute.'],
        '429',
      ],
    ];
    for (const [status, body, kind, messages, code] of cases) {
      it(`${status} ${JSON.stringify(body).slice(0, 70)} -> ${kind}`, async () => {
        next = { status, body: typeof body === 'string' ? body : JSON.stringify(body) };
        const { client } = clientFor(url, {}, { pauseMs: 1 });
        if (kind === 'ok') return assert.equal((await client.hold('L1', 1)).holdId, 'h1');
        const e = await fails(client.hold('L1', 1), kind);
        assert.deepEqual(e.messages, messages);
        assert.equal(e.httpStatus, status);
        assert.equal(e.code, code);
      });
    }
  });

  describe('429 and the rate limit', () => {
    it('a 429 pauses every call of the client: nothing reaches Tixstock during the pause, then the queued calls go', async () => {
      const { client } = clientFor(sim, {}, { pauseMs: 1500, maxWaitMs: 10_000 });
      sim.fault({ call: 'tickets/get', kind: '429', times: 1 });
      const e = await fails(client.getTickets({ page: 1 }), 'rate_limited');
      assert.equal(e.httpStatus, 429);
      const queued = [client.hold('L1', 1), client.getTickets({ page: 1 }), client.closeBroker('1')];
      await sleep(300);
      assert.equal(sim.calls.length, 1, 'no call was sent during the pause');
      const results = await Promise.all(queued);
      assert.equal(results.length, 3);
      assert.equal(sim.calls.length, 4);
    });

    it('during a pause longer than its wait budget a call fails rate_limited at once, unsent', async () => {
      const { client } = clientFor(sim, {}, { pauseMs: 60_000, maxWaitMs: 500 });
      sim.fault({ call: 'hold', kind: '429', times: 1 });
      await fails(client.hold('L1', 1), 'rate_limited');
      const e = await fails(client.closeBroker('1'), 'rate_limited');
      assert.match(e.messages[0]!, /paused/);
      assert.equal(sim.calls.length, 1);
    });

    it("the simulator's own limit: past it every call is 429 for a minute, and the client stops sending", async () => {
      const limited = await simulator({ rateLimitPerMinute: 2 });
      const { client } = clientFor(limited, {}, { pauseMs: 60_000, maxWaitMs: 300 });
      await client.getTickets({ page: 1 });
      await client.getTickets({ page: 1 });
      await fails(client.getTickets({ page: 1 }), 'rate_limited');
      for (let i = 0; i < 5; i++) await fails(client.getTickets({ page: 1 }), 'rate_limited');
      assert.equal(limited.calls.length, 3);
    });

    it('the client-side limit: TIXSTOCK_API_RATE_PER_MINUTE calls per window; the rest wait within their budget or fail unsent', async () => {
      const { client } = clientFor(sim, { TIXSTOCK_API_RATE_PER_MINUTE: '3' }, { maxWaitMs: 300 });
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => client.getTickets({ page: 1 })));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.deepEqual(
        rejected.map((r) => (r.reason as TixstockError).kind),
        ['rate_limited', 'rate_limited'],
      );
      assert.equal(sim.calls.length, 3);

      const windowed = clientFor(sim, { TIXSTOCK_API_RATE_PER_MINUTE: '2' }, { rateWindowMs: 300, maxWaitMs: 10_000 }).client;
      sim.calls.length = 0;
      const all = await Promise.all(Array.from({ length: 5 }, () => windowed.getTickets({ page: 1 })));
      assert.equal(all.length, 5);
      assert.equal(sim.calls.length, 5);
    });

    it('a full queue refuses at once', async () => {
      const { client } = clientFor(sim, { TIXSTOCK_API_RATE_PER_MINUTE: '1' }, { maxQueued: 1, maxWaitMs: 300 });
      const first = client.getTickets({ page: 1 });
      const second = client.getTickets({ page: 1 });
      const e = await fails(client.getTickets({ page: 1 }), 'rate_limited');
      assert.match(e.messages[0]!, /already wait/);
      await first;
      await fails(second, 'rate_limited');
      assert.equal(sim.calls.length, 1);
    });
  });

  describe('kept-alive connections (a counting server)', () => {
    let server: Server;
    let url: string;
    let connections: number;
    let received: string[];
    /** Cut the connection instead of answering the n-th request of each connection. */
    let cutRequest: number | undefined;
    const reply = JSON.stringify({ data: [], meta: { hold_id: 'h1' }, errors: [] });
    before(async () => {
      server = http.createServer((req, res) => {
        const socket = req.socket as typeof req.socket & { served?: number };
        socket.served = (socket.served ?? 0) + 1;
        req.resume();
        req.on('end', () => {
          received.push(`${req.method} ${req.url}`);
          if (socket.served === cutRequest) return void socket.destroy();
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(reply);
        });
      });
      server.on('connection', () => void connections++);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    });
    beforeEach(() => {
      connections = 0;
      received = [];
      cutRequest = undefined;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    it('calls share one connection, closed by the client once idle for keepAliveIdleMs', async () => {
      const { client } = clientFor(url, {}, { keepAliveIdleMs: 150 });
      for (let i = 0; i < 5; i++) await client.getTickets({ page: 1 });
      await client.hold('L1', 1);
      assert.equal(connections, 1);
      await sleep(400);
      await client.hold('L1', 1);
      assert.equal(connections, 2, 'the idle connection was closed, a new one opened');
      assert.equal(received.length, 7);
    });

    it('a read whose reused connection is cut before any answer is sent again once, on a new connection', async () => {
      const { client } = clientFor(url);
      await client.getTickets({ page: 1 });
      cutRequest = 2;
      assert.deepEqual((await client.getTickets({ page: 2 })).data, []);
      assert.deepEqual(received, [
        'GET /v1/tickets/get?per_page=50&page=1',
        'GET /v1/tickets/get?per_page=50&page=2',
        'GET /v1/tickets/get?per_page=50&page=2',
      ]);
      assert.equal(connections, 2);
    });

    it('a hold whose reused connection is cut is unknown_outcome and never sent again', async () => {
      const { client } = clientFor(url);
      await client.getTickets({ page: 1 });
      cutRequest = 2;
      await fails(client.hold('L1', 1), 'unknown_outcome');
      await client.getTickets({ page: 1 });
      await fails(client.addOrder('h1', 1, orderBody('O-k')), 'unknown_outcome');
      const get = 'GET /v1/tickets/get?per_page=50&page=1';
      assert.deepEqual(received, [get, 'POST /v1/tickets/hold/L1', get, 'POST /v1/order/add/h1/1']);
    });
  });

  describe('retryAbsolute', () => {
    it('retries an absolute write through 503s until it is accepted, and never a conflict', async () => {
      const { client } = clientFor(sim);
      const { holdId } = await client.hold('L1', 1);
      await client.addOrder(holdId, 1, orderBody('O-r'));
      sim.calls.length = 0;
      sim.fault({ call: 'order/update', kind: '503', times: 2 });
      await retryAbsolute(() => client.updateOrder('O-r', { order_status: 'Dispatched' }), { baseMs: 10 });
      assert.equal(sim.calls.length, 3);
      assert.equal(sim.state.orders.get('O-r')!.status, 'Dispatched');
      sim.calls.length = 0;
      await fails(
        retryAbsolute(() => client.hold('L1', 100), { baseMs: 10 }),
        'conflict',
      );
      assert.equal(sim.calls.length, 1);
    });
  });
});
