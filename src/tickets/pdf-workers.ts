// A small bounded pool of worker threads (pdf-worker.ts) that load brokers' PDFs: checking a
// fulfilment's file and merging an order's tickets. pdf-lib is synchronous and a hostile PDF can
// cost minutes of CPU and gigabytes, so it never runs on the event loop: each job has a time
// limit (the worker is terminated and replaced past it), each worker a V8 heap limit, and the
// worker counts objects and inflated bytes. Jobs beyond the pool's size wait their turn.
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import PQueue from 'p-queue';
import type { Config } from '../config.js';
import { DeadlineExceeded } from '../db/transaction.js';
import { log } from '../log.js';

export interface PdfLimits {
  maxObjects: number;
  maxInflatedBytes: number;
}

export type PdfJob =
  | { kind: 'check'; pdf: Uint8Array; limits: PdfLimits }
  | { kind: 'merge'; pdfs: Uint8Array[]; limits: PdfLimits };

/** A PDF refused: `limit` when it passed a limit (rather than being broken), `index` the PDF of a merge. */
export interface PdfRefusal {
  ok: false;
  reason: string;
  limit: boolean;
  /** Its time ran out (PDF_TIMEOUT_MS, or the webhook's deadline). */
  late?: boolean;
  index?: number;
}

const timedOut = (reply: PdfReply) => !reply.ok && reply.late === true;

/** Time kept after a PDF check for recording the webhook's answer. */
const DEADLINE_RESERVE_MS = 1000;
/** `pdf`: the checked bytes, handed back. */
export type CheckReply = { ok: true; pages: number; sha256: string; pdf: Uint8Array } | PdfRefusal;
export type MergeReply = { ok: true; pdf: Uint8Array } | PdfRefusal;
export type PdfReply = CheckReply | MergeReply;

export interface PdfWorkerOptions {
  workers: number;
  memoryMb: number;
  timeoutMs: number;
  limits: PdfLimits;
}

export function pdfWorkerOptions(config: Config): PdfWorkerOptions {
  return {
    workers: config.PDF_WORKERS,
    memoryMb: config.PDF_WORKER_MEMORY_MB,
    timeoutMs: config.PDF_TIMEOUT_MS,
    limits: { maxObjects: config.PDF_MAX_OBJECTS, maxInflatedBytes: config.PDF_MAX_INFLATED_MB * 2 ** 20 },
  };
}

// Compiled, this file is dist/src/tickets/pdf-workers.js next to pdf-worker.js. Under tsx (tests,
// the support CLI) it is the .ts source, and a worker does not get tsx's loader from the flags
// it inherits, so it registers tsx itself before importing the entry.
const COMPILED_ENTRY = new URL('./pdf-worker.js', import.meta.url);
const SOURCE_ENTRY = new URL('./pdf-worker.ts', import.meta.url);
const workerEntry = (): [string | URL, { eval?: boolean }] =>
  existsSync(COMPILED_ENTRY)
    ? [COMPILED_ENTRY, {}]
    : [
        `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(SOURCE_ENTRY.href)}); })`,
        { eval: true },
      ];

/** A worker's heap after a job beyond this share of its limit: it is replaced (pdf-lib keeps
 * every name and reference it has seen in module-level caches). */
const RECYCLE_SHARE = 0.5;

interface Running {
  worker: Worker;
  ready: Promise<void>;
}

export class PdfWorkers {
  private readonly queue: PQueue;
  private readonly idle: Running[] = [];
  /** Jobs sent to a worker, workers started, workers stopped past their time, and jobs in a worker
   * now and at most at once (for tests and the log). */
  readonly counts = { jobs: 0, started: 0, timedOut: 0, busy: 0, peakBusy: 0 };

  constructor(readonly options: PdfWorkerOptions) {
    this.queue = new PQueue({ concurrency: options.workers });
  }

  /** Pages and sha256 of a ticket PDF. Its ArrayBuffer is moved to the worker, not copied, and
   * moved back in the reply (`pdf`); `pdf` itself is left empty. So the caller must own that
   * buffer (check.ts's decoder allocates it with allocUnsafeSlow); a slice of Node's pool is copied. */
  /** `deadlineAt`: the webhook's own end (ms since the epoch). The PDF then gets at most the time
   * left before it less DEADLINE_RESERVE_MS (to record the answer); when that, not PDF_TIMEOUT_MS,
   * is what runs out, the check throws DeadlineExceeded (answered 503, retried) instead of refusing
   * the file: a good PDF behind a slow queue is not a bad PDF. */
  check(pdf: Uint8Array, deadlineAt?: number): Promise<CheckReply> {
    return this.run(
      { kind: 'check', pdf, limits: this.options.limits },
      this.options.timeoutMs,
      deadlineAt,
    ) as Promise<CheckReply>;
  }

  /** The PDFs' pages in one PDF, in the order given; each PDF gets the time limit of a check. */
  merge(pdfs: Uint8Array[]): Promise<MergeReply> {
    return this.run(
      { kind: 'merge', pdfs, limits: this.options.limits },
      this.options.timeoutMs * Math.max(1, pdfs.length),
    ) as Promise<MergeReply>;
  }

  /** Starts a worker now, so that the first PDF does not wait for one (the service, at start). */
  warm(): void {
    if (this.idle.length === 0) this.idle.push(this.start());
  }

  private start(): Running {
    const [entry, how] = workerEntry();
    const worker = new Worker(entry, {
      ...how,
      // A small young generation: the PDF's bytes live outside the heap, and a larger one only
      // adds resident memory.
      resourceLimits: { maxOldGenerationSizeMb: this.options.memoryMb, maxYoungGenerationSizeMb: 8 },
    });
    worker.unref(); // only a worker with a job keeps the process (the CLI, a test run) alive
    this.counts.started++;
    const ready = new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`PDF worker exited at start (code ${code})`)));
    });
    ready.catch(() => {});
    const running = { worker, ready };
    worker.once('exit', () => {
      const at = this.idle.indexOf(running);
      if (at !== -1) this.idle.splice(at, 1); // died while idle: not handed a job
    });
    return running;
  }

  private async run(job: PdfJob, limitMs: number, deadlineAt?: number): Promise<PdfReply> {
    return this.queue.add(async () => {
      const leftMs = deadlineAt === undefined ? Infinity : deadlineAt - Date.now() - DEADLINE_RESERVE_MS;
      if (leftMs <= 0) throw new DeadlineExceeded(0);
      const timeoutMs = Math.min(limitMs, leftMs);
      const running = this.idle.pop() ?? this.start();
      await running.ready;
      this.counts.jobs++;
      this.counts.peakBusy = Math.max(this.counts.peakBusy, ++this.counts.busy);
      running.worker.ref();
      const { reply, reusable } = await this.send(running.worker, job, timeoutMs).finally(() => this.counts.busy--);
      running.worker.unref();
      if (reusable) this.idle.push(running);
      else void running.worker.terminate();
      if (timedOut(reply) && timeoutMs < limitMs) throw new DeadlineExceeded(timeoutMs);
      return reply;
    }) as Promise<PdfReply>;
  }

  private send(worker: Worker, job: PdfJob, timeoutMs: number): Promise<{ reply: PdfReply; reusable: boolean }> {
    const refuse = (reason: string, late = false) => ({
      reply: { ok: false, reason, limit: true, ...(late ? { late } : {}) } as PdfRefusal,
      reusable: false,
    });
    return new Promise((resolve) => {
      const done = (result: { reply: PdfReply; reusable: boolean }) => {
        clearTimeout(timer);
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        resolve(result);
      };
      const onMessage = (m: PdfReply & { heapUsed: number }) => {
        const { heapUsed, ...reply } = m;
        // A PDF past a limit may have left a large heap behind; a clean worker is cheap.
        done({ reply, reusable: (reply.ok || !reply.limit) && heapUsed < this.options.memoryMb * 2 ** 20 * RECYCLE_SHARE });
      };
      const onError = (err: Error & { code?: string }) => {
        if (err.code === 'ERR_WORKER_OUT_OF_MEMORY')
          return done(refuse(`loading it needs more than ${this.options.memoryMb} MB of memory`));
        log.error('PDF worker failed', { error: err });
        done(refuse(`the PDF worker failed (${err.message.slice(0, 200)})`));
      };
      const onExit = (code: number) => done(refuse(`the PDF worker stopped (code ${code})`));
      const timer = setTimeout(() => {
        this.counts.timedOut++;
        log.warn('PDF worker stopped: a PDF took longer than its time', { job: job.kind, timeout_ms: timeoutMs });
        done(refuse(`loading it takes longer than ${timeoutMs / 1000} s`, true));
      }, timeoutMs);
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      worker.postMessage(job, transferable(job));
    });
  }
}

/** The ArrayBuffers a job hands over instead of copying: the PDFs' own, never one that holds
 * other data too (Node's pool of small Buffers). A check's PDF is its decoder's buffer
 * (check.ts), larger than the PDF by the base64 escapes and padding. */
function transferable(job: PdfJob): ArrayBuffer[] {
  const own = (p: Uint8Array) =>
    p.buffer instanceof ArrayBuffer &&
    p.byteOffset === 0 &&
    p.buffer.byteLength !== Buffer.poolSize &&
    (job.kind === 'check' || p.byteLength === p.buffer.byteLength);
  return (job.kind === 'check' ? [job.pdf] : job.pdfs).filter(own).map((p) => p.buffer as ArrayBuffer);
}

const pools = new Map<string, PdfWorkers>();

/** The process's pool for these options (one per distinct configuration: tests use several). */
export function pdfWorkers(config: Config): PdfWorkers {
  const options = pdfWorkerOptions(config);
  const key = JSON.stringify(options);
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = new PdfWorkers(options)));
  return pool;
}
