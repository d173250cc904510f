// POST /webhooks/tixstock (and any subpath, e.g. /webhooks/tixstock/ticket-create), on plain
// node:http: check the signature header, read the raw body within WEBHOOK_BODY_LIMIT and the byte
// budget, verify the signature, then process it with bounded concurrency, all within the
// webhook's deadline counted from its first byte. Status codes: README, "Webhooks".
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import PQueue from 'p-queue';
import { isDatabaseUnavailable } from '../db/transaction.js';
import { sendError, sendJson } from '../http.js';
import { log } from '../log.js';
import { type PipelineDeps, processDelivery, webhookDeadlineMs } from './process.js';
import { parseSignatureHeader, signatureVerifier } from './signature.js';

/** Headers kept in the delivery log. Never the signature. */
const LOGGED_HEADERS = ['content-type', 'content-encoding', 'content-length', 'tixstock-version', 'user-agent', 'x-original-url'];

/** Bodies from this size on (ticket PDFs of several MB) take the large lane. */
export const LARGE_BODY_BYTES = 4 * 1024 * 1024;

/** Time an upload may take to get going before WEBHOOK_MIN_UPLOAD_RATE applies. */
const UPLOAD_GRACE_MS = 2000;

/** Bytes of webhook bodies held in memory at once by this process (WEBHOOK_MEMORY_LIMIT). */
export class ByteBudget {
  used = 0;
  constructor(readonly limit: number) {}

  /** One webhook's share, given back in full by release(). */
  share() {
    let held = 0;
    let released = false;
    return {
      take: (n: number): boolean => {
        if (released || this.used + n > this.limit) return false;
        this.used += n;
        held += n;
        return true;
      },
      /** Gives everything back; the share takes nothing more after it. */
      release: () => {
        released = true;
        this.used -= held;
        held = 0;
      },
    };
  }
}
export type BudgetShare = ReturnType<ByteBudget['share']>;

/** A webhook that was still waiting for a processing slot when its deadline passed. */
export class WaitedPastDeadline extends Error {
  constructor() {
    super('the webhook waited for a processing slot past its deadline; nothing was attempted, retry later');
  }
}

/** Bounded work. Every webhook counts as in flight from its first byte until answered (graceful
 * shutdown waits for them). Bodies being read are bounded in bytes (the budget), not in number:
 * until its signature is checked a webhook takes no processing slot, so unsigned or slow uploads
 * never take a signed webhook's place. Signed webhooks get one of `concurrency` slots or wait
 * among `backlog` more; beyond that, 503 at once instead of queueing without end. */
export class WebhookGate {
  readonly queue: PQueue;
  /** Large webhooks (fulfilments with tens of MB of PDF) are applied a few at a time, apart from
   * the small ones: several at once would each miss their deadline on a small dyno and hold
   * hundreds of MB, while holds and releases queued behind them would wait seconds. */
  readonly largeQueue: PQueue;
  readonly memory: ByteBudget;
  /** Every webhook from its first byte until answered. */
  inFlight = 0;
  /** Bodies being read whose signature is not checked yet. */
  uploading = 0;
  /** Signed webhooks waiting for or holding a processing slot. */
  admitted = 0;
  /** Set at shutdown: webhooks already in flight finish, new ones are answered 503. */
  closing = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    readonly backlog: number,
    largeConcurrency = 1,
    memoryLimit = Number.POSITIVE_INFINITY,
  ) {
    this.queue = new PQueue({ concurrency });
    this.largeQueue = new PQueue({ concurrency: largeConcurrency });
    this.memory = new ByteBudget(memoryLimit);
  }

  /** Why a new webhook cannot be taken now, or undefined when it is counted in flight. */
  arrive(): string | undefined {
    if (this.closing) return 'shutting down; retry later';
    this.inFlight++;
    return undefined;
  }

  leave(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Why a signed webhook cannot wait for a slot, or undefined when it may (call done() after). */
  admit(): string | undefined {
    if (this.admitted >= this.concurrency + this.backlog) return 'too many webhooks in progress; retry later';
    this.admitted++;
    return undefined;
  }

  done(): void {
    this.admitted--;
  }

  /** Runs the work in the lane of its size, unless deadlineAt (Date.now()) passes while it waits
   * for a slot: then it is never started and WaitedPastDeadline is thrown at the deadline. The
   * work may give its slot back before it ends (`leaveSlot`): a hold waiting for its batch
   * (process.ts) needs no connection of its own. It still counts as admitted until answered. */
  async run<T>(bytes: number, deadlineAt: number, work: (leaveSlot: () => void) => Promise<T>): Promise<T> {
    if (Date.now() >= deadlineAt) throw new WaitedPastDeadline();
    const lane = bytes >= LARGE_BODY_BYTES ? this.largeQueue : this.queue;
    let result: Promise<T> | undefined;
    const task = () =>
      new Promise<void>((freeSlot) => {
        const leaveSlot = () => freeSlot();
        result = work(leaveSlot);
        result.then(leaveSlot, leaveSlot);
      });
    // A free slot: p-queue starts the work at once, so there is no wait to bound.
    if (lane.size === 0 && lane.pending < lane.concurrency) {
      await lane.add(task);
      return result!;
    }
    const waiting = new AbortController();
    let started = false;
    // Aborting a started task would make p-queue reject it while its transaction runs: the
    // signal only ever fires while the task waits.
    const timer = setTimeout(() => {
      if (!started) waiting.abort(new WaitedPastDeadline());
    }, deadlineAt - Date.now());
    try {
      await lane.add(
        () => {
          started = true;
          clearTimeout(timer);
          return task();
        },
        { signal: waiting.signal },
      );
      return result!;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when no webhook is in flight (graceful shutdown). */
  idle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/** Webhooks whose client waits for "100 Continue" before sending the body (curl does for large
 * ones): they are told to go on only once their body may be read, so a refused one is never sent. */
const awaitingContinue = new WeakSet<IncomingMessage>();

/** For a server's 'checkContinue' event: a webhook gets its 100 Continue from the receiver, once
 * its headers passed; any other request at once. */
export function continueHandler(receive: RequestListener, other: RequestListener): RequestListener {
  return (req, res) => {
    if (!isWebhookRequest(req)) {
      res.writeContinue();
      return other(req, res);
    }
    awaitingContinue.add(req);
    receive(req, res);
  };
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

/** How long a refused upload's connection stays half-open after the answer: destroying a socket
 * with unread data resets the connection, and the client could lose the answer with it. */
const LINGER_MS = 1000;

/** Answers without reading the rest of the body, then closes the connection. */
function refuseUnread(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (status === 503) headers = { ...headers, 'Retry-After': '5' };
  sendError(res, status, message, [message], { ...headers, Connection: 'close' });
  if (req.complete) return;
  const socket = req.socket;
  const end = socket.end.bind(socket);
  // Node destroys a Connection: close socket as soon as the answer is written (and would read
  // the rest of the body until then): stop reading, half-close it so the client sees the answer
  // and stops sending, and destroy it LINGER_MS later.
  socket.pause();
  socket.destroySoon = () => {
    end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}

type BodyRead = { body: Buffer } | { refused: { status: number; message: string } } | { aborted: true };

interface BodyRules {
  /** WEBHOOK_BODY_LIMIT. */
  limit: number;
  /** This webhook's share of the byte budget: taken before a byte is read. */
  share: BudgetShare;
  /** Date.now() by which a body of this many bytes must have arrived. */
  deadlineAt: (bytes: number) => number;
  /** Bytes per second, on average, once UPLOAD_GRACE_MS has passed. */
  minRate: number;
  arrivedAt: number;
  /** Called once the body may be read, before it is. */
  ready: () => void;
  /** Each piece of the body as it arrives. */
  onChunk: (chunk: Buffer) => void;
}

/** Reads the raw body into one buffer. With Content-Length the budget is taken at once, before
 * anything is read; without it (chunked) as the bytes arrive, and reading stops when it runs out.
 * Too slow an upload, or one still unfinished at its deadline, ends with 408. */
function readBody(req: IncomingMessage, rules: BodyRules): Promise<BodyRead> {
  const lengthHeader = req.headers['content-length'];
  const declared = lengthHeader === undefined ? undefined : Number(lengthHeader);
  const tooLarge = { refused: { status: 413, message: `body is larger than WEBHOOK_BODY_LIMIT (${rules.limit} bytes)` } };
  const noMemory = { refused: { status: 503, message: 'too many webhook bodies in memory (WEBHOOK_MEMORY_LIMIT); retry later' } };
  if (declared !== undefined && declared > rules.limit) return Promise.resolve(tooLarge);
  if (declared !== undefined && !rules.share.take(declared)) return Promise.resolve(noMemory);
  rules.ready();
  return new Promise((resolve) => {
    const buffer = declared === undefined ? undefined : Buffer.allocUnsafe(declared);
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (r: BodyRead) => {
      clearInterval(timer);
      req.off('data', onData).off('end', onEnd).off('close', onClose);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      if (buffer) {
        if (received + chunk.length > buffer.length)
          return finish({ refused: { status: 400, message: 'body is longer than its Content-Length' } });
        chunk.copy(buffer, received);
      } else {
        if (received + chunk.length > rules.limit) return finish(tooLarge);
        if (!rules.share.take(chunk.length)) return finish(noMemory);
        chunks.push(chunk);
      }
      received += chunk.length;
      rules.onChunk(chunk);
    };
    const onEnd = () => {
      if (buffer && received !== buffer.length)
        return finish({ refused: { status: 400, message: 'body is shorter than its Content-Length' } });
      finish({ body: buffer ?? Buffer.concat(chunks, received) });
    };
    const onClose = () => finish({ aborted: true });
    const timer = setInterval(() => {
      const now = Date.now();
      const by = rules.deadlineAt(declared ?? received);
      if (now > by) {
        return finish({
          refused: {
            status: 408,
            message: `body not received within its deadline (${by - rules.arrivedAt} ms); nothing was applied`,
          },
        });
      }
      const rated = now - rules.arrivedAt - UPLOAD_GRACE_MS;
      if (rated > 0 && received < (rules.minRate * rated) / 1000) {
        finish({
          refused: {
            status: 408,
            message: `body arrives too slowly (under WEBHOOK_MIN_UPLOAD_RATE, ${rules.minRate} bytes/s); nothing was applied`,
          },
        });
      }
    }, 250);
    req.on('data', onData).on('end', onEnd).on('close', onClose);
  });
}

const unavailable = (res: ServerResponse, message: string, headers: Record<string, string> = {}) =>
  sendError(res, 503, message, [message], { ...headers, 'Retry-After': '5' });

/** The webhook receiver as a plain node:http handler: Tixstock's traffic is most of ours, and
 * express's routing and response helpers cost more per webhook than the rest of the receiver. */
export function webhookReceiver(deps: PipelineDeps & { gate: WebhookGate }): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, gate } = deps;
  return (req, res) => {
    receive(req, res).catch((err) => {
      log.error('webhook failed', { error: err });
      if (!res.headersSent) sendError(res, 500, 'internal error; nothing was applied');
      else res.destroy();
    });
  };

  async function receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivedAt = Date.now();
    const started = process.hrtime.bigint();
    const path = (req.url ?? '').split('?')[0]!;
    const refused = gate.arrive();
    if (refused) return refuseUnread(req, res, 503, refused);
    res.on('close', () => gate.leave());

    if (config.TIXSTOCK_BEARER_TOKEN.length === 0) {
      return refuseUnread(req, res, 503, 'webhooks are not accepted: TIXSTOCK_BEARER_TOKEN is not configured');
    }
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    };
    // An unsigned upload is refused on its headers: its body is never read.
    const signatureHeader = parseSignatureHeader(header('x-tixstock-signature'));
    if (!signatureHeader.ok) {
      log.warn('webhook refused: signature', { path, reason: signatureHeader.reason, content_length: header('content-length') });
      return refuseUnread(req, res, 401, signatureHeader.reason);
    }

    const verifier = signatureVerifier(config.TIXSTOCK_BEARER_TOKEN);
    const raw = await readWithinBudget(req, res, arrivedAt, path, verifier.update);
    if (!raw) return;
    const deadlineAt = arrivedAt + webhookDeadlineMs(config, raw.length);

    const signature = verifier.verify(signatureHeader.given);
    if (!signature.ok) {
      log.warn('webhook refused: signature', { path, reason: signature.reason, bytes: raw.length });
      return sendError(res, 401, signature.reason);
    }
    const full = gate.admit();
    if (full) return unavailable(res, full, { Connection: 'close' });
    res.on('close', () => gate.done());

    const headers: Record<string, string> = {};
    for (const h of LOGGED_HEADERS) {
      const v = header(h);
      if (v !== undefined) headers[h] = v;
    }
    try {
      const result = await gate.run(raw.length, deadlineAt, (leaveSlot) =>
        processDelivery(deps, {
          leaveSlot,
          raw,
          path,
          headers,
          versionHeader: header('tixstock-version'),
          contentType: header('content-type'),
          deadlineAt,
        }),
      );
      sendJson(res, result.status, result.reply);
      log.info('webhook', {
        delivery_id: result.deliveryId,
        type: result.type,
        version: result.version,
        outcome: result.outcome,
        status: result.status,
        ...result.refs,
        bytes: raw.length,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      });
    } catch (err) {
      if (err instanceof WaitedPastDeadline) {
        log.warn('webhook not attempted: its deadline passed while it waited', { bytes: raw.length, waiting: gate.admitted });
        return unavailable(res, err.message);
      }
      if (isDatabaseUnavailable(err)) {
        log.warn('webhook not applied: database unavailable', { error: err, bytes: raw.length });
        return unavailable(res, 'database unavailable; nothing was applied, retry later');
      }
      throw err;
    }
  }

  /** The body, counted in the byte budget until the webhook is answered, and as an unverified
   * upload while it is read; or undefined when the webhook was answered (or cut off) instead. */
  async function readWithinBudget(
    req: IncomingMessage,
    res: ServerResponse,
    arrivedAt: number,
    path: string,
    onChunk: (chunk: Buffer) => void,
  ): Promise<Buffer | undefined> {
    const share = gate.memory.share();
    res.on('close', () => share.release());
    gate.uploading++;
    const read = await readBody(req, {
      limit: config.WEBHOOK_BODY_LIMIT,
      share,
      arrivedAt,
      minRate: config.WEBHOOK_MIN_UPLOAD_RATE,
      deadlineAt: (bytes) => arrivedAt + webhookDeadlineMs(config, bytes),
      ready: () => awaitingContinue.has(req) && res.writeContinue(),
      onChunk,
    }).finally(() => gate.uploading--);
    if ('body' in read) return read.body;
    if ('refused' in read) {
      const { status, message } = read.refused;
      log.warn('webhook refused while reading its body', {
        path,
        status,
        message,
        content_length: req.headers['content-length'],
        memory_used: gate.memory.used,
        uploading: gate.uploading,
      });
      refuseUnread(req, res, status, message);
    }
    return undefined;
  }
}
