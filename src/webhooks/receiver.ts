// POST /webhooks/tixstock (and any subpath, e.g. /webhooks/tixstock/ticket-create), on plain
// node:http: read the raw body within WEBHOOK_BODY_LIMIT, verify the signature, then process it with bounded
// concurrency. Status codes are those of DESIGN.md section 3.
import type { IncomingMessage, ServerResponse } from 'node:http';
import PQueue from 'p-queue';
import getRawBody from 'raw-body';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { isDatabaseUnavailable } from '../db/transaction.js';
import { sendError, sendJson } from '../http.js';
import { log } from '../log.js';
import { processDelivery } from './process.js';
import { verifySignature } from './signature.js';

/** Headers kept in the delivery log. Never the signature. */
const LOGGED_HEADERS = ['content-type', 'content-encoding', 'content-length', 'tixstock-version', 'user-agent', 'x-original-url'];

/** Bounded work: at most `concurrency` webhooks touch the database at once; a request counts
 * as in flight from its first byte until answered, and beyond concurrency + backlog in
 * flight the receiver answers 503 at once instead of queueing without end. */
/** Bodies from this size on (ticket PDFs of several MB) take the large lane. */
export const LARGE_BODY_BYTES = 4 * 1024 * 1024;

export class WebhookGate {
  readonly queue: PQueue;
  /** Large webhooks (fulfilments with tens of MB of PDF) are applied a few at a time, apart from
   * the small ones: several at once would each miss their deadline on a small dyno and hold
   * hundreds of MB, while holds and releases queued behind them would wait seconds. */
  readonly largeQueue: PQueue;
  inFlight = 0;
  /** Set at shutdown: webhooks already in flight finish, new ones are answered 503. */
  closing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly concurrency: number, readonly backlog: number, largeConcurrency = 1) {
    this.queue = new PQueue({ concurrency });
    this.largeQueue = new PQueue({ concurrency: largeConcurrency });
  }

  /** Runs the work in the lane of its size. */
  run<T>(bytes: number, work: () => Promise<T>): Promise<T> {
    return (bytes >= LARGE_BODY_BYTES ? this.largeQueue : this.queue).add(work);
  }

  /** Why a new webhook cannot be taken now, or undefined when it was let in. */
  tryEnter(): string | undefined {
    if (this.closing) return 'shutting down; retry later';
    if (this.inFlight >= this.concurrency + this.backlog) return 'too many webhooks in progress; retry later';
    this.inFlight++;
    return undefined;
  }

  leave(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no webhook is in flight (graceful shutdown). */
  idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** POST /webhooks/tixstock, /webhooks/tixstock/ and any subpath, any letter case (as express
 * routed them before the receiver left it). */
export function isWebhookRequest(req: IncomingMessage): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return WEBHOOK_PATH.test(q === -1 ? url : url.slice(0, q));
}
const WEBHOOK_PATH = /^\/webhooks\/tixstock(?:\/.*)?$/i;

const unavailable = (res: ServerResponse, message: string, headers: Record<string, string> = {}) =>
  sendError(res, 503, message, [message], { ...headers, 'Retry-After': '5' });

/** The webhook receiver as a plain node:http handler: Tixstock's traffic is most of ours, and
 * express's routing and response helpers cost more per webhook than the rest of the receiver. */
export function webhookReceiver(deps: { sql: Sql; config: Config; gate: WebhookGate }): (req: IncomingMessage, res: ServerResponse) => void {
  const { sql, config, gate } = deps;
  return (req, res) => {
    receive(req, res).catch((err) => {
      log.error('webhook failed', { error: err });
      if (!res.headersSent) sendError(res, 500, 'internal error; nothing was applied');
      else res.destroy();
    });
  };

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '').split('?')[0]!;
    const refused = gate.tryEnter();
    if (refused) return unavailable(res, refused, { Connection: 'close' });
    res.on('close', () => gate.leave());

    if (config.TIXSTOCK_BEARER_TOKEN.length === 0) {
      return unavailable(res, 'webhooks are not accepted: TIXSTOCK_BEARER_TOKEN is not configured');
    }
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    let raw: Buffer;
    try {
      raw = await getRawBody(req, { limit: config.WEBHOOK_BODY_LIMIT, length: req.headers['content-length'] });
    } catch (err) {
      const e = err as { type?: string; status?: number; message: string };
      if (e.type === 'request.aborted') return;
      if (e.type === 'entity.too.large') {
        log.warn('webhook refused: body too large', { path, limit: config.WEBHOOK_BODY_LIMIT, content_length: header('content-length') });
        return sendError(res, 413, `body is larger than WEBHOOK_BODY_LIMIT (${config.WEBHOOK_BODY_LIMIT} bytes)`, undefined, { Connection: 'close' });
      }
      return sendError(res, e.status && e.status < 500 ? e.status : 400, `could not read the body: ${e.message}`, undefined, { Connection: 'close' });
    }

    const signature = verifySignature(raw, header('x-tixstock-signature'), config.TIXSTOCK_BEARER_TOKEN);
    if (!signature.ok) {
      log.warn('webhook refused: signature', { path, reason: signature.reason, bytes: raw.length });
      return sendError(res, 401, signature.reason);
    }

    const headers: Record<string, string> = {};
    for (const h of LOGGED_HEADERS) {
      const v = header(h);
      if (v !== undefined) headers[h] = v;
    }
    try {
      const result = await gate.run(raw.length, () =>
        processDelivery({ sql, config }, {
          raw, path, headers, versionHeader: header('tixstock-version'), contentType: header('content-type'),
        }),
      );
      sendJson(res, result.status, result.reply);
      log.info('webhook', {
        delivery_id: result.deliveryId, type: result.type, version: result.version, outcome: result.outcome,
        status: result.status, ...result.refs, bytes: raw.length, ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        log.warn('webhook not applied: database unavailable', { error: err, bytes: raw.length });
        return unavailable(res, 'database unavailable; nothing was applied, retry later');
      }
      throw err;
    }
  }
}
