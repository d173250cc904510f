// POST /webhooks/tixstock (and any subpath, e.g. /webhooks/tixstock/ticket-create): read the
// raw body within WEBHOOK_BODY_LIMIT, verify the signature, then process it with bounded
// concurrency. Status codes are those of DESIGN.md section 3.
import express, { type Request, type Response } from 'express';
import PQueue from 'p-queue';
import getRawBody from 'raw-body';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { isDatabaseUnavailable } from '../db/transaction.js';
import { sendError } from '../http.js';
import { log } from '../log.js';
import { processDelivery } from './process.js';
import { verifySignature } from './signature.js';

/** Headers kept in the delivery log. Never the signature. */
const LOGGED_HEADERS = ['content-type', 'content-length', 'tixstock-version', 'user-agent', 'x-original-url'];

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

function unavailable(res: Response, message: string): void {
  res.set('Retry-After', '5');
  sendError(res, 503, message);
}

export function webhookRouter(deps: { sql: Sql; config: Config; gate: WebhookGate }): express.Router {
  const { sql, config, gate } = deps;
  const router = express.Router();

  router.post('/webhooks/tixstock{/*rest}', async (req: Request, res: Response) => {
    const started = process.hrtime.bigint();
    const refused = gate.tryEnter();
    if (refused) {
      res.set('Connection', 'close');
      return unavailable(res, refused);
    }
    res.on('close', () => gate.leave());

    if (config.TIXSTOCK_BEARER_TOKEN.length === 0) {
      return unavailable(res, 'webhooks are not accepted: TIXSTOCK_BEARER_TOKEN is not configured');
    }
    let raw: Buffer;
    try {
      raw = await getRawBody(req, { limit: config.WEBHOOK_BODY_LIMIT, length: req.headers['content-length'] });
    } catch (err) {
      const e = err as { type?: string; status?: number; message: string };
      if (e.type === 'request.aborted') return;
      res.set('Connection', 'close');
      if (e.type === 'entity.too.large') {
        log.warn('webhook refused: body too large', { path: req.path, limit: config.WEBHOOK_BODY_LIMIT, content_length: req.get('content-length') });
        return sendError(res, 413, `body is larger than WEBHOOK_BODY_LIMIT (${config.WEBHOOK_BODY_LIMIT} bytes)`);
      }
      return sendError(res, e.status && e.status < 500 ? e.status : 400, `could not read the body: ${e.message}`);
    }

    const signature = verifySignature(raw, req.get('x-tixstock-signature'), config.TIXSTOCK_BEARER_TOKEN);
    if (!signature.ok) {
      log.warn('webhook refused: signature', { path: req.path, reason: signature.reason, bytes: raw.length });
      return sendError(res, 401, signature.reason);
    }

    const headers: Record<string, string> = {};
    for (const h of LOGGED_HEADERS) {
      const v = req.get(h);
      if (v !== undefined) headers[h] = v;
    }
    try {
      const result = await gate.run(raw.length, () =>
        processDelivery({ sql, config }, {
          raw, path: req.path, headers, versionHeader: req.get('tixstock-version'), contentType: req.get('content-type'),
        }),
      );
      res.status(result.status).json(result.reply);
      log.info('webhook', {
        delivery_id: result.deliveryId, type: result.type, version: result.version, outcome: result.outcome,
        status: result.status, ...result.refs, bytes: raw.length, ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    } catch (err) {
      if (isDatabaseUnavailable(err)) {
        log.warn('webhook not applied: database unavailable', { error: err, bytes: raw.length });
        return unavailable(res, 'database unavailable; nothing was applied, retry later');
      }
      log.error('webhook failed', { error: err });
      sendError(res, 500, 'internal error; nothing was applied');
    }
  });

  return router;
}
