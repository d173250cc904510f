// A Tixstock simulator over real HTTP (node:http) for tests and for developers without a
// Tixstock sandbox: the reseller API calls the client makes, with their reply and error shapes,
// faults switched on per call, control endpoints under /_sim/, and the webhook player
// (sim-webhooks.ts) that plays Tixstock's side against a running service.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  MESSAGES,
  SimError,
  SimState,
  ulid,
  type PutListing,
  type SimHold,
  type SimListing,
  type SimOrder,
} from './sim-state.js';
import { WebhookPlayer, type WebhookResult } from './sim-webhooks.js';

export type SimCallName = 'hold' | 'release' | 'order/add' | 'order/update' | 'broker/close' | 'tickets/get';

/** - 429/500/503: that error answer, nothing applied;
 * - 502: a proxy's HTML page, nothing applied; 504: a proxy's HTML page after applying (a gateway
 *   that gave up waiting for Tixstock);
 * - reset: the connection is cut before anything is applied; applied_reset: after applying;
 * - no_answer: never answered, nothing applied; applied_no_answer: applied, never answered;
 * - slow: applied and answered after `ms` (default 2000). */
export type SimFaultKind =
  | '429'
  | '500'
  | '502'
  | '503'
  | '504'
  | 'reset'
  | 'applied_reset'
  | 'no_answer'
  | 'applied_no_answer'
  | 'slow';

export interface SimFault {
  call: SimCallName | '*';
  kind: SimFaultKind;
  /** How many matching calls it hits; every one until clearFaults() when unset. */
  times?: number;
  ms?: number;
}

export interface SimCall {
  call: SimCallName | null;
  method: string;
  /** The path below the base URL, with its query. */
  path: string;
  body: unknown;
  /** The Authorization header as received (tests check the client sends it). */
  auth: string | undefined;
  at: number;
  /** The status answered; undefined while unanswered or when cut off. */
  status?: number;
  fault?: SimFaultKind;
}

export interface SimulatorOptions {
  port?: number;
  host?: string;
  token: string;
  holdMinutes?: number;
  /** Beyond this many calls in a minute every call is answered 429 for rateBlockMs; null: no limit. */
  rateLimitPerMinute?: number | null;
  rateBlockMs?: number;
  /** The status of validation errors (the list-of-strings shape); the docs do not say. */
  validationStatus?: number;
  /** meta.mode of every answer. */
  mode?: 'Sandbox' | 'Production';
  /** The service the webhook player posts to, and /_sim/play/* uses, unless given per call. */
  serviceUrl?: string;
  /** Also send the holding reseller a ticket.hold/ticket.release for its own holds (unknown whether
   * Tixstock does: reseller-api.md 3.2). Needs serviceUrl. */
  echoOwnHolds?: boolean;
}

export interface Simulator {
  /** The base to use as TIXSTOCK_API_URL, e.g. http://127.0.0.1:PORT/v1. */
  url: string;
  /** http://127.0.0.1:PORT, where /_sim/ lives. */
  origin: string;
  port: number;
  state: SimState;
  calls: SimCall[];
  putListing(p: PutListing): SimListing;
  listing(id: string): SimListing | undefined;
  holds(): SimHold[];
  orders(): SimOrder[];
  fault(f: SimFault): void;
  clearFaults(): void;
  /** Forgets every listing, hold, order, closed broker, call and fault. */
  reset(): void;
  /** Moves the simulator's clock on (hold expiry without waiting). */
  advance(ms: number): void;
  webhooks: WebhookPlayer;
  /** One signed webhook (PHP-style bytes, keyed by the token) to serviceUrl/webhooks/tixstock. */
  sendWebhook(serviceUrl: string, type: string, data: unknown): Promise<WebhookResult>;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  body: unknown;
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

const proxyPage = (res: http.ServerResponse, status: number, text: string) => {
  res.writeHead(status, { 'Content-Type': 'text/html' });
  res.end(`<html><body><h1>${status} ${text}</h1></body></html>`);
};

const errorBody = (errors: SimError['errors']) => ({ data: [], meta: {}, errors });

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  let offset = 0;
  const now = () => Date.now() + offset;
  const state = new SimState((opts.holdMinutes ?? 30) * 60_000, now);
  const calls: SimCall[] = [];
  const faults: (SimFault & { left: number })[] = [];
  const validationStatus = opts.validationStatus ?? 422;
  const mode = opts.mode ?? 'Sandbox';
  const rateBlockMs = opts.rateBlockMs ?? 60_000;
  let windowStart = 0;
  let windowCount = 0;
  let blockedUntil = 0;
  const sockets = new Set<Socket>();
  let base = '';
  const player = new WebhookPlayer(state, opts.token, opts.serviceUrl);

  const meta = (m: Record<string, unknown> = {}) => ({ mode, ...m, request_id: ulid(now()) });

  function takeFault(name: SimCallName): SimFault | undefined {
    const i = faults.findIndex((f) => f.call === '*' || f.call === name);
    if (i < 0) return undefined;
    const f = faults[i]!;
    if (--f.left <= 0) faults.splice(i, 1);
    return f;
  }

  /** Over the limit: every call is refused until the block ends, like Tixstock's minute. */
  function rateLimited(): boolean {
    if (opts.rateLimitPerMinute === null || opts.rateLimitPerMinute === undefined) return false;
    const t = Date.now();
    if (t < blockedUntil) return true;
    if (t - windowStart >= 60_000) (windowStart = t), (windowCount = 0);
    if (++windowCount > opts.rateLimitPerMinute) {
      blockedUntil = t + rateBlockMs;
      return true;
    }
    return false;
  }

  function route(
    method: string,
    parts: string[],
  ): { name: SimCallName; run: (body: Record<string, unknown>, query: URLSearchParams) => Answer } | 'no_method' | undefined {
    const [a, b, c, d, e] = parts;
    const post = (name: SimCallName, run: (body: Record<string, unknown>, q: URLSearchParams) => Answer) =>
      method === 'POST' ? { name, run } : ('no_method' as const);
    if (a === 'tickets' && b === 'hold' && c && !d) {
      return post('hold', (body) => {
        const { listing, hold } = state.hold(c, body.quantity);
        if (opts.echoOwnHolds)
          void player.send('ticket.hold', { external_id: hold.listingId, hold_quantity: hold.quantity }).catch(() => {});
        return {
          status: 200,
          body: {
            data: { quantity_available: listing.quantity },
            meta: meta({ type: 'ticket.hold', external_id: hold.listingId, hold_id: hold.holdId, quantity: hold.quantity }),
            message: 'Ticket(s) has successfully been put on hold.',
          },
        };
      });
    }
    if (a === 'tickets' && b === 'release' && c && !e) {
      return post('release', (body) => {
        const { listing, hold, released } = state.release(c, d ?? body.release_quantity);
        if (opts.echoOwnHolds)
          void player.send('ticket.release', { external_id: hold.listingId, release_quantity: released }).catch(() => {});
        return {
          status: 200,
          body: {
            data: { quantity_available: listing.quantity },
            // In the docs' order, which puts type before mode here.
            meta: { type: 'ticket.release', mode, hold_id: hold.holdId, quantity: released, request_id: ulid(now()) },
            message: 'Ticket(s) successfully released.',
          },
        };
      });
    }
    if (a === 'order' && b === 'add' && c && d && !e) {
      return post('order/add', (body) => {
        const order = state.addOrder(c, d, body, validationStatus);
        return {
          status: 200,
          body: {
            data: state.orderResource(order),
            meta: meta({ type: 'order.add' }),
            message: 'The order has successfully been added.',
          },
        };
      });
    }
    if (a === 'order' && b === 'update' && c && !d) {
      return post('order/update', (body) => {
        const order = state.updateOrder(c, body, validationStatus);
        return {
          status: 200,
          body: {
            data: state.orderResource(order),
            meta: meta({ type: 'order.update' }),
            message: 'The order has successfully been updated.',
          },
        };
      });
    }
    if (a === 'broker' && b === 'close' && c && !d) {
      return post('broker/close', () => {
        state.closeBroker(c);
        return {
          status: 200,
          body: {
            data: { broker_id: c },
            success: 'true',
            message: 'The Tixstock broker has been successfully disconnected',
            meta: meta(),
          },
        };
      });
    }
    if (a === 'tickets' && b === 'get' && !c) {
      if (method !== 'GET') return 'no_method';
      return { name: 'tickets/get', run: (_body, q) => ticketsGet(q) };
    }
    return undefined;
  }

  function ticketsGet(q: URLSearchParams): Answer {
    const page = q.has('page') ? Number(q.get('page')) : 1;
    const perPage = q.has('per_page') ? Number(q.get('per_page')) : 10;
    const problems: string[] = [];
    if (!Number.isInteger(page) || page < 1) problems.push('The page must be an integer of at least 1.');
    if (!Number.isInteger(perPage) || perPage < 1) problems.push('The per page must be an integer of at least 1.');
    else if (perPage > 50) problems.push('The per page may not be greater than 50.');
    if (problems.length) throw new SimError(validationStatus, problems);
    const all = state.list({ listingId: q.get('listing_id') ?? undefined, eventId: q.get('event_id') ?? undefined });
    const from = (page - 1) * perPage;
    const items = all.slice(from, from + perPage);
    const link = (p: number) => {
      const l = new URLSearchParams(q);
      l.set('page', String(p));
      l.set('per_page', String(perPage));
      return `${base}/tickets/get?${l}`;
    };
    return {
      status: 200,
      body: {
        data: items.map((l) => state.resourceOf(l)),
        links: {
          self: link(page),
          first: link(1),
          last: null,
          prev: page > 1 ? link(page - 1) : null,
          next: from + perPage < all.length ? link(page + 1) : null,
        },
        meta: meta({
          current_page: page,
          from: items.length ? from + 1 : null,
          to: items.length ? from + items.length : null,
          path: `${base}/tickets/get`,
          per_page: String(perPage),
        }),
      },
    };
  }

  async function api(req: http.IncomingMessage, res: http.ServerResponse, url: URL, text: string): Promise<void> {
    const rel = url.pathname.slice('/v1/'.length);
    const parts = rel
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent);
    let body: unknown = text === '' ? {} : undefined;
    if (body === undefined) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const found = route(req.method ?? 'GET', parts);
    const call: SimCall = {
      call: typeof found === 'object' ? found.name : null,
      method: req.method ?? '',
      path: rel + url.search,
      body,
      auth: req.headers.authorization,
      at: now(),
    };
    calls.push(call);
    const answer = (a: Answer) => {
      call.status = a.status;
      json(res, a.status, a.body);
    };
    const f = typeof found === 'object' ? takeFault(found.name) : undefined;
    if (f) call.fault = f.kind;
    if (f?.kind === '429' || f?.kind === '500' || f?.kind === '503')
      return answer({ status: Number(f.kind), body: errorBody({ title: MESSAGES[f.kind], code: f.kind }) });
    if (f?.kind === '502') return ((call.status = 502), proxyPage(res, 502, 'Bad Gateway'));
    if (f?.kind === 'reset') return void req.socket.destroy();
    if (f?.kind === 'no_answer') return;
    if (rateLimited()) return answer({ status: 429, body: errorBody({ title: MESSAGES['429'], code: '429' }) });
    const auth = req.headers.authorization;
    if (!auth || !/^Bearer\s+\S/i.test(auth))
      return answer({ status: 401, body: errorBody({ title: MESSAGES['100'], code: '100' }) });
    if (auth.replace(/^Bearer\s+/i, '') !== opts.token)
      return answer({ status: 401, body: errorBody({ title: MESSAGES['401'], code: '401' }) });
    if (found === undefined) return answer({ status: 404, body: errorBody({ title: MESSAGES['404-endpoint'], code: '404' }) });
    if (found === 'no_method') return answer({ status: 405, body: errorBody({ title: MESSAGES['405'], code: '405' }) });
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return answer({ status: validationStatus, body: errorBody(['The request body must be a JSON object.']) });
    }
    let a: Answer;
    try {
      a = found.run(body as Record<string, unknown>, url.searchParams);
    } catch (err) {
      if (!(err instanceof SimError)) throw err;
      return answer({ status: err.status, body: errorBody(err.errors) });
    }
    if (f?.kind === '504') return ((call.status = 504), proxyPage(res, 504, 'Gateway Time-out'));
    if (f?.kind === 'applied_reset') return void req.socket.destroy();
    if (f?.kind === 'applied_no_answer') return;
    if (f?.kind === 'slow') await new Promise((r) => setTimeout(r, f.ms ?? 2000));
    answer(a);
  }

  const control = createControl();

  const server = http.createServer((req, res) => {
    readBody(req)
      .then(async (text) => {
        const url = new URL(req.url ?? '/', 'http://sim');
        if (url.pathname.startsWith('/v1/')) return api(req, res, url, text);
        if (url.pathname.startsWith('/_sim/')) return control(req, res, url, text);
        json(res, 404, errorBody({ title: MESSAGES['404-endpoint'], code: '404' }));
      })
      .catch((err: unknown) => {
        if (!res.headersSent) json(res, 500, errorBody({ title: `simulator error: ${(err as Error).message}`, code: '500' }));
      });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1'}:${port}`;
  base = `${origin}/v1`;

  /** /_sim/: state, listings, faults, calls, the clock and the webhook player, for curl. */
  function createControl() {
    return async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, text: string): Promise<void> => {
      const what = `${req.method} ${url.pathname.slice('/_sim/'.length)}`;
      let body: Record<string, unknown> = {};
      try {
        if (text !== '') body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return json(res, 400, { success: false, message: 'the body is not JSON', errors: ['body: not JSON'] });
      }
      try {
        if (what === 'GET state') return json(res, 200, snapshot());
        if (what === 'POST listings') return json(res, 201, sim.putListing(body as unknown as PutListing));
        if (what === 'GET calls') return json(res, 200, calls);
        if (what === 'DELETE calls') return ((calls.length = 0), json(res, 200, { success: true }));
        if (what === 'GET faults') return json(res, 200, faults);
        if (what === 'POST faults') return (sim.fault(body as unknown as SimFault), json(res, 201, faults));
        if (what === 'DELETE faults') return (sim.clearFaults(), json(res, 200, { success: true }));
        if (what === 'POST reset') return (sim.reset(), json(res, 200, { success: true }));
        if (what === 'POST clock')
          return (sim.advance(Number(body.advance_ms ?? 0)), json(res, 200, { now: new Date(now()).toISOString() }));
        if (req.method === 'POST' && url.pathname.startsWith('/_sim/play/')) {
          return json(res, 200, await player.play(url.pathname.slice('/_sim/play/'.length), body));
        }
      } catch (err) {
        return json(res, 400, { success: false, message: (err as Error).message, errors: [(err as Error).message] });
      }
      json(res, 404, { success: false, message: `no control endpoint ${what}`, errors: [`${what}: unknown`] });
    };
  }

  function snapshot() {
    state.expire();
    return {
      now: new Date(now()).toISOString(),
      listings: [...state.listings.values()],
      holds: [...state.holds.values()],
      orders: [...state.orders.values()],
      closed_brokers: state.closedBrokers,
      faults,
    };
  }

  const FAULT_KINDS: SimFaultKind[] = [
    '429',
    '500',
    '502',
    '503',
    '504',
    'reset',
    'applied_reset',
    'no_answer',
    'applied_no_answer',
    'slow',
  ];
  const CALL_NAMES: (SimCallName | '*')[] = ['hold', 'release', 'order/add', 'order/update', 'broker/close', 'tickets/get', '*'];

  const sim: Simulator = {
    url: base,
    origin,
    port,
    state,
    calls,
    putListing: (p) => {
      if (!Number.isInteger(p.quantity) || p.quantity < 0) throw new Error('quantity: must be a whole number of at least 0');
      return state.putListing(p);
    },
    listing: (id) => (state.expire(), state.byId(id)),
    holds: () => (state.expire(), [...state.holds.values()]),
    orders: () => [...state.orders.values()],
    fault: (f) => {
      if (!CALL_NAMES.includes(f.call)) throw new Error(`call: one of ${CALL_NAMES.join(', ')}`);
      if (!FAULT_KINDS.includes(f.kind)) throw new Error(`kind: one of ${FAULT_KINDS.join(', ')}`);
      if (f.times !== undefined && (!Number.isInteger(f.times) || f.times < 1))
        throw new Error('times: a whole number of at least 1');
      if (f.ms !== undefined && (typeof f.ms !== 'number' || !(f.ms >= 0))) throw new Error('ms: a number of milliseconds');
      faults.push({ ...f, left: f.times ?? Infinity });
    },
    clearFaults: () => void (faults.length = 0),
    reset: () => {
      state.reset();
      calls.length = 0;
      faults.length = 0;
    },
    advance: (ms) => void (offset += ms),
    webhooks: player,
    sendWebhook: (serviceUrl, type, data) => player.send(type, data, serviceUrl),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
  return sim;
}
