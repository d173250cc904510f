// Tixstock's reseller API client (the calls: README, "Tixstock's reseller API"). It only calls and classifies: it never retries a
// hold or an order/add (a repeat could hold twice or sell twice), and leaves retries of absolute
// writes to the caller's job (retryAbsolute below for callers without one).
import http from 'node:http';
import https from 'node:https';
import PQueue from 'p-queue';
import type { Config } from '../config.js';
import { log as defaultLog } from '../log.js';
import {
  TixstockError,
  type AddOrderBody,
  type TicketsQuery,
  type TixstockClient,
  type TixstockErrorKind,
  type TixstockListing,
  type TixstockReply,
} from './contract.js';

type Logger = Pick<typeof defaultLog, 'info' | 'warn' | 'error'>;

export interface TixstockClientOptions {
  /** How long every call pauses after a 429 (Tixstock blocks "for the next minute"). */
  pauseMs?: number;
  /** The client-side rate limit's window; TIXSTOCK_API_RATE_PER_MINUTE calls per window. */
  rateWindowMs?: number;
  /** How long a call may wait for its turn (rate limit, 429 pause) before it fails rate_limited
   * unsent; TIXSTOCK_API_TIMEOUT_MS when unset. Its answer then has TIXSTOCK_API_TIMEOUT_MS more. */
  maxWaitMs?: number;
  /** Calls allowed to wait for their turn; beyond it a call fails rate_limited at once. */
  maxQueued?: number;
  /** Refuse (kind config) any answer whose meta.mode is "Production": tests and the simulator. */
  refuseProduction?: boolean;
  /** How long an idle kept-alive connection is kept (KEEP_ALIVE_IDLE_MS when unset). */
  keepAliveIdleMs?: number;
  /** The token to send instead of the first of TIXSTOCK_BEARER_TOKEN. */
  token?: string;
  log?: Logger;
}

type ClientConfig = Pick<
  Config,
  | 'TIXSTOCK_API_URL'
  | 'TIXSTOCK_API_TIMEOUT_MS'
  | 'TIXSTOCK_API_RATE_PER_MINUTE'
  | 'TIXSTOCK_RELEASE_PATH'
  | 'TIXSTOCK_BEARER_TOKEN'
>;

const CONFLICT_CODES = new Set(['106', '108', '109']);
const CONFIG_CODES = new Set(['100', '102', '103', '110', '111', '401', '403']);

/** Tixstock's two error shapes ({title, code} or a list of strings) as one list of messages. */
export function tixstockErrors(body: unknown): { messages: string[]; code?: string } {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (errors === undefined || errors === null || errors === '') return { messages: [] };
  if (Array.isArray(errors)) return { messages: errors.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))) };
  if (typeof errors === 'string') return { messages: [errors] };
  if (typeof errors === 'object') {
    const e = errors as Record<string, unknown>;
    const code = e.code === undefined || e.code === null ? undefined : String(e.code);
    const texts = ['title', 'message', 'detail'].map((k) => e[k]).filter((v): v is string => typeof v === 'string' && v !== '');
    if (!texts.length && !code && Object.keys(e).length === 0) return { messages: [] };
    return { messages: texts.length ? texts : [JSON.stringify(e)], code };
  }
  return { messages: [String(errors)] };
}

function kindOf(status: number, code: string | undefined): TixstockErrorKind {
  if (code && CONFLICT_CODES.has(code)) return 'conflict';
  if (status === 401 || status === 403 || (code && CONFIG_CODES.has(code))) return 'config';
  if (status === 429 || code === '429') return 'rate_limited';
  if (status === 404 || code === '404') return 'not_found';
  // A gateway that gave up waiting may have let the call through.
  if (status === 504) return 'unknown_outcome';
  if (status >= 500 || code === '500' || code === '503') return 'unavailable';
  return 'refused';
}

/** Errors of the connection itself: refused or unresolvable means nothing was sent. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // AggregateError of a dual-stack connect.
    const inner = (e as { errors?: unknown[] }).errors?.[0];
    if (inner && typeof (inner as { code?: unknown }).code === 'string') return (inner as { code: string }).code;
  }
  return undefined;
}

/** Idle connections are closed well before a server would close them (node:http's servers, the
 * simulator's among them, after 5 s; a server's `Keep-Alive: timeout=` hint, less 1 s, is obeyed
 * when shorter): a call sent on a connection the server is closing at that moment would fail as
 * unknown_outcome, since for a POST nothing proves the server did not read it. */
export const KEEP_ALIVE_IDLE_MS = 2000;

/** A connection error on a reused connection before any byte of the answer: the server closed
 * the idle connection as the call went out. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

interface Answered {
  status: number;
  text: string;
}

interface Call {
  name: string;
  method: 'GET' | 'POST';
  /** The path template for the log line, e.g. tickets/hold/{listing_id}. */
  template: string;
  path: string;
  ids: Record<string, string | number>;
  body?: unknown;
}

const fill = (template: string, values: Record<string, string | number>) =>
  template.replace(/\{(\w+)\}/g, (m, k: string) => (k in values ? encodeURIComponent(String(values[k])) : m));

export function createTixstockClient(config: ClientConfig, opts: TixstockClientOptions = {}): TixstockClient {
  const log = opts.log ?? defaultLog;
  const base = config.TIXSTOCK_API_URL.replace(/\/+$/, '');
  const token = opts.token ?? config.TIXSTOCK_BEARER_TOKEN[0];
  const timeoutMs = config.TIXSTOCK_API_TIMEOUT_MS;
  const maxWaitMs = opts.maxWaitMs ?? timeoutMs;
  const pauseMs = opts.pauseMs ?? 60_000;
  const maxQueued = opts.maxQueued ?? 1000;
  const transport = new URL(base).protocol === 'https:' ? https : http;
  // node:http with kept-alive connections: about a third of fetch's CPU per call.
  const agent = new transport.Agent({ keepAlive: true, timeout: opts.keepAliveIdleMs ?? KEEP_ALIVE_IDLE_MS });
  const queue = new PQueue({ intervalCap: config.TIXSTOCK_API_RATE_PER_MINUTE, interval: opts.rateWindowMs ?? 60_000 });
  let pausedUntil = 0;
  let resume: NodeJS.Timeout | undefined;

  function pause(): void {
    pausedUntil = Date.now() + pauseMs;
    queue.pause();
    clearTimeout(resume);
    resume = setTimeout(() => queue.start(), pauseMs);
    resume.unref();
  }

  const fail = (kind: TixstockErrorKind, messages: string[], status?: number, code?: string, requestId?: string) =>
    new TixstockError(kind, messages, status, code, requestId);

  async function send<T>(call: Call): Promise<TixstockReply<T>> {
    const started = Date.now();
    let status: number | undefined;
    let requestId: string | undefined;
    const line = (level: keyof Logger, extra: Record<string, unknown> = {}) =>
      log[level]('tixstock call', {
        method: call.method,
        path: call.template,
        ...call.ids,
        status,
        ms: Date.now() - started,
        tixstock_request_id: requestId,
        ...extra,
      });
    try {
      const reply = await exchange<T>(call, (s, id) => ((status = s), (requestId = id)));
      line('info');
      return reply;
    } catch (err) {
      const e = err instanceof TixstockError ? err : fail('unknown_outcome', [String(err)]);
      if (e.kind === 'config')
        line('error', {
          kind: e.kind,
          code: e.code,
          messages: e.messages,
          alert: 'Tixstock refused our credentials or IP: check TIXSTOCK_BEARER_TOKEN and the allow-list',
        });
      else
        line(e.kind === 'conflict' || e.kind === 'not_found' || e.kind === 'refused' ? 'info' : 'warn', {
          kind: e.kind,
          code: e.code,
        });
      throw e;
    }
  }

  /** One HTTP exchange within TIXSTOCK_API_TIMEOUT_MS, failures classified: not sent
   * (unavailable) or maybe applied (unknown_outcome). Only a GET whose reused connection failed
   * before any answer is sent again, once, on a new one: hold and order/add never are, since
   * nothing proves a server did not read them (KEEP_ALIVE_IDLE_MS keeps that race rare). */
  function request(method: Call['method'], url: string, payload: string | undefined, retried = false): Promise<Answered> {
    const headers: http.OutgoingHttpHeaders = { Accept: 'application/json', Authorization: `Bearer ${token}` };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    return new Promise<Answered>((resolve, reject) => {
      let settled = false;
      let answered = false;
      const req = transport.request(url, { method, headers, agent });
      const settle = (err: TixstockError | undefined, value?: Answered) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value!);
      };
      const timer = setTimeout(() => {
        // Still connecting: not a byte of the call was sent.
        const connected = req.socket !== null && req.socket !== undefined && !req.socket.connecting;
        settle(
          connected
            ? fail('unknown_outcome', [`no answer within ${timeoutMs} ms: the call may have been applied`])
            : fail('unavailable', [`cannot connect to Tixstock within ${timeoutMs} ms`]),
        );
        req.destroy();
      }, timeoutMs);
      req.on('error', (err) => {
        if (settled) return;
        const code = networkCode(err);
        if (method === 'GET' && !retried && !answered && req.reusedSocket && code && STALE_CONNECTION.has(code)) {
          settled = true;
          clearTimeout(timer);
          return void request(method, url, payload, true).then(resolve, reject);
        }
        if (code && NOT_SENT.has(code)) return settle(fail('unavailable', [`cannot connect to Tixstock (${code})`]));
        settle(
          fail('unknown_outcome', [
            `the connection failed after the call was sent (${code ?? err.message}): it may have been applied`,
          ]),
        );
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => settle(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => {});
        res.on('close', () => {
          if (!res.complete)
            settle(fail('unknown_outcome', ['the connection failed during the answer: the call may have been applied']));
        });
      });
      req.end(payload);
    });
  }

  async function exchange<T>(call: Call, seen: (status: number, requestId?: string) => void): Promise<TixstockReply<T>> {
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    const res = await request(call.method, `${base}/${call.path}`, payload);
    const text = res.text;
    let body: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = text === '' ? undefined : JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    const meta =
      body?.meta && typeof body.meta === 'object' && !Array.isArray(body.meta) ? (body.meta as Record<string, unknown>) : {};
    const requestId = typeof meta.request_id === 'string' ? meta.request_id : undefined;
    seen(res.status, requestId);
    const ok = res.status >= 200 && res.status < 300;
    if (ok && !body)
      throw fail(
        'unknown_outcome',
        ['Tixstock answered 2xx without a JSON object: the call may have been applied'],
        res.status,
        undefined,
        requestId,
      );
    const { messages, code } = tixstockErrors(body);
    if (!ok || messages.length) {
      const kind = kindOf(res.status, code);
      if (kind === 'rate_limited') pause();
      const shown = messages.length
        ? messages
        : [body || text === '' ? `HTTP ${res.status}` : `HTTP ${res.status}: ${text.slice(0, 200)}`];
      throw fail(kind, shown, res.status, code, requestId);
    }
    if (opts.refuseProduction && meta.mode === 'Production') {
      throw fail(
        'config',
        ['Tixstock answered in Production mode where only a sandbox or the simulator is allowed'],
        res.status,
        undefined,
        requestId,
      );
    }
    const links = body!.links && typeof body!.links === 'object' ? (body!.links as TixstockReply<T>['links']) : undefined;
    return {
      status: res.status,
      data: body!.data as T,
      meta,
      message: typeof body!.message === 'string' ? body!.message : undefined,
      links,
      requestId,
    };
  }

  /** Waits for the call's turn (429 pause, rate limit) within maxWaitMs, then sends it. */
  async function call<T>(c: Call): Promise<TixstockReply<T>> {
    if (!token) {
      log.error('tixstock call', {
        method: c.method,
        path: c.template,
        ...c.ids,
        kind: 'config',
        alert: 'TIXSTOCK_BEARER_TOKEN is unset',
      });
      throw fail('config', ['TIXSTOCK_BEARER_TOKEN is unset: no call to Tixstock can be made']);
    }
    const waitUntil = Date.now() + maxWaitMs;
    if (pausedUntil > waitUntil) {
      throw fail('rate_limited', [`Tixstock answered 429: calls are paused until ${new Date(pausedUntil).toISOString()}`]);
    }
    if (queue.size >= maxQueued) throw fail('rate_limited', [`${queue.size} calls to Tixstock already wait for their turn`]);
    // The signal only bounds the wait for a turn: once sent, the call's own timeout applies
    // (p-queue may reject add() on abort even while the task runs).
    let sending: Promise<TixstockReply<T>> | undefined;
    try {
      await queue.add(
        () => {
          sending = send<T>(c);
          return sending.then(
            () => undefined,
            () => undefined,
          );
        },
        { signal: AbortSignal.timeout(Math.max(1, waitUntil - Date.now())) },
      );
    } catch {
      // Not given a turn in time; handled below.
    }
    if (!sending) {
      const why =
        Date.now() < pausedUntil
          ? 'calls are paused after a 429'
          : `the rate limit (${config.TIXSTOCK_API_RATE_PER_MINUTE}/min) is reached`;
      throw fail('rate_limited', [`not sent: no turn within ${maxWaitMs} ms (${why})`]);
    }
    return sending;
  }

  // NaN when Tixstock leaves data.quantity_available out: the call was applied all the same.
  const quantityAvailable = (r: TixstockReply<unknown>): TixstockReply<{ quantity_available: number }> => {
    const q = Number((r.data as { quantity_available?: unknown } | null)?.quantity_available);
    return { ...r, data: { quantity_available: Number.isFinite(q) ? q : NaN } };
  };

  return {
    async hold(listingId, quantity) {
      const r = await call<unknown>({
        name: 'hold',
        method: 'POST',
        template: 'tickets/hold/{listing_id}',
        path: fill('tickets/hold/{listing_id}', { listing_id: listingId }),
        ids: { listing_id: listingId, quantity },
        body: { quantity },
      });
      const holdId = r.meta.hold_id;
      if (typeof holdId !== 'string' || holdId === '') {
        throw fail(
          'unknown_outcome',
          ['Tixstock accepted the hold without meta.hold_id: it cannot be released or ordered'],
          r.status,
          undefined,
          r.requestId,
        );
      }
      return { ...quantityAvailable(r), holdId };
    },
    async release(holdId, quantity) {
      const values = { hold_id: holdId, release_quantity: quantity };
      const r = await call<unknown>({
        name: 'release',
        method: 'POST',
        template: config.TIXSTOCK_RELEASE_PATH,
        path: fill(config.TIXSTOCK_RELEASE_PATH, values),
        ids: values,
        body: values,
      });
      return quantityAvailable(r);
    },
    addOrder(holdId, soldQuantity, body: AddOrderBody) {
      return call({
        name: 'order/add',
        method: 'POST',
        template: 'order/add/{hold_id}/{sold_quantity}',
        path: fill('order/add/{hold_id}/{sold_quantity}', { hold_id: holdId, sold_quantity: soldQuantity }),
        ids: { hold_id: holdId, sold_quantity: soldQuantity, order_id: body.order_id },
        body,
      });
    },
    updateOrder(orderId, body) {
      return call({
        name: 'order/update',
        method: 'POST',
        template: 'order/update/{order_id}',
        path: fill('order/update/{order_id}', { order_id: orderId }),
        ids: { order_id: orderId },
        body,
      });
    },
    closeBroker(brokerId) {
      return call({
        name: 'broker/close',
        method: 'POST',
        template: 'broker/close/{broker_id}',
        path: fill('broker/close/{broker_id}', { broker_id: brokerId }),
        ids: { broker_id: brokerId },
      });
    },
    async getTickets(q: TicketsQuery) {
      const perPage = Math.min(50, Math.max(1, q.perPage ?? 50));
      const params = new URLSearchParams({ per_page: String(perPage), page: String(q.page) });
      if (q.listingId !== undefined) params.set('listing_id', q.listingId);
      const r = await call<unknown>({
        name: 'tickets/get',
        method: 'GET',
        template: 'tickets/get',
        path: `tickets/get?${params}`,
        ids: { page: q.page, per_page: perPage, ...(q.listingId !== undefined ? { listing_id: q.listingId } : {}) },
      });
      if (!Array.isArray(r.data))
        throw fail('refused', ['tickets/get answered without a data list'], r.status, undefined, r.requestId);
      return r as TixstockReply<TixstockListing[]>;
    },
  };
}

/** Every listing tickets/get returns, page by page: stops at links.next null or a short page,
 * and at maxPages (a guard against a server that never says it is done). */
export async function* allTickets(
  client: TixstockClient,
  q: { listingId?: string; maxPages?: number } = {},
): AsyncGenerator<TixstockListing> {
  const maxPages = q.maxPages ?? 1000;
  for (let page = 1; page <= maxPages; page++) {
    const r = await client.getTickets({ page, perPage: 50, listingId: q.listingId });
    yield* r.data;
    if (!r.links?.next || r.data.length < 50) return;
  }
  throw new TixstockError('refused', [`tickets/get still had more after ${maxPages} pages`]);
}

/** Kinds worth another try for an absolute write (order/update, broker/close) or a read: the
 * call was not applied, or applying it twice is harmless. */
const RETRYABLE: ReadonlySet<TixstockErrorKind> = new Set(['unavailable', 'unknown_outcome', 'rate_limited']);

/** Retries an absolute write or a read with exponential back-off and jitter, a few times over
 * about 30 s; never use it for hold or addOrder. */
export async function retryAbsolute<T>(
  fn: () => Promise<T>,
  opts: { tries?: number; baseMs?: number; maxMs?: number } = {},
): Promise<T> {
  const tries = opts.tries ?? 5;
  const baseMs = opts.baseMs ?? 1000;
  const maxMs = opts.maxMs ?? 15_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= tries || !(err instanceof TixstockError) || !RETRYABLE.has(err.kind)) throw err;
      const delay = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
    }
  }
}
