// Drains the job table: polls for due jobs, runs at most `concurrency` at once (p-queue), and
// records each result. A failing job is retried with exponential back-off; nothing a job does
// can slow or fail the webhook that queued it, because that webhook has already committed.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import PQueue from 'p-queue';
import type { Config } from '../config.js';
import type { Sql, Tx } from '../db/connect.js';
import { log } from '../log.js';
import { claimJobs, completeJob, failJob, releaseJobs, type Job } from './queue.js';

export interface JobContext {
  sql: Sql;
  config: Config;
}

/** Runs a job. What it returns, if anything, runs in the transaction that marks the job done
 * (e.g. the record of a mail sent), so the two are written together or not at all. */
export type JobHandler = (job: Job, ctx: JobContext) => Promise<((tx: Tx) => Promise<void>) | void>;

/** Work the worker does on a timer rather than from the job table (retention, hold expiry). It
 * must be safe to run on several dynos at once and to run again after a crash. */
export interface PeriodicTask {
  name: string;
  everyMs: number;
  /** The first run, after start. */
  firstAfterMs: number;
  /** `stopping()` turns true when the worker is being stopped: end early. */
  run(ctx: JobContext & { stopping(): boolean }): Promise<void>;
}

export interface JobWorkerOptions {
  sql: Sql;
  config: Config;
  /** Job kind -> handler; main.ts hands in every module's. */
  handlers: Record<string, JobHandler>;
  periodic?: PeriodicTask[];
  concurrency?: number;
  /** How often to look for due jobs when idle. */
  pollMs?: number;
  /** How long a claimed job is ours; after that another worker may take it. */
  leaseMs?: number;
  /** First retry delay; doubles per attempt up to maxRetryMs. */
  retryBaseMs?: number;
  maxRetryMs?: number;
  workerId?: string;
  /** Claim only the kinds this worker has handlers for (the support CLI's, which must not take
   * and fail the service's jobs). Default false: the service's worker fails an unknown kind loudly. */
  onlyOwnKinds?: boolean;
}

export interface JobWorker {
  readonly id: string;
  /** Stops claiming, lets running jobs finish (within graceMs), returns the rest to the queue. */
  stop(graceMs?: number): Promise<void>;
}

export function retryDelay(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
}

export function startJobWorker(opts: JobWorkerOptions): JobWorker {
  const { sql, config } = opts;
  const handlers = opts.handlers;
  const concurrency = opts.concurrency ?? 2;
  const pollMs = opts.pollMs ?? 1000;
  const leaseMs = opts.leaseMs ?? 5 * 60_000;
  const retryBaseMs = opts.retryBaseMs ?? 30_000;
  const maxRetryMs = opts.maxRetryMs ?? 60 * 60_000;
  const id = opts.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const queue = new PQueue({ concurrency });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<unknown> = Promise.resolve();

  async function run(job: Job): Promise<void> {
    const handler = handlers[job.kind];
    try {
      if (!handler) throw new Error(`no handler for job kind ${JSON.stringify(job.kind)}`);
      const record = await handler(job, { sql, config });
      const done = await sql.begin(async (tx) => {
        if (!(await completeJob(tx, job, id))) return false;
        if (record) await record(tx);
        return true;
      });
      if (!done) log.warn('job finished after its lease was taken over', { job_id: job.id, kind: job.kind });
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      const delay = retryDelay(job.attempts, retryBaseMs, maxRetryMs);
      const result = await failJob(sql, job, id, message, delay).catch((e) => {
        log.error('could not record a job failure; it is retried when its lease ends', { job_id: job.id, error: e });
        return 'retry' as const;
      });
      (result === 'failed' ? log.error : log.warn)('job failed', {
        job_id: job.id,
        kind: job.kind,
        attempts: job.attempts,
        outcome: result,
        retry_in_ms: result === 'retry' ? delay : null,
        error: message.slice(0, 300),
      });
    }
  }

  /** Claims as many due jobs as there are free slots. True when all slots were filled, so
   * more may be due at once. */
  async function poll(): Promise<boolean> {
    const free = concurrency - queue.size - queue.pending;
    if (stopped || free <= 0) return false;
    let jobs: Job[] = [];
    try {
      jobs = await claimJobs(sql, id, free, leaseMs, opts.onlyOwnKinds ? Object.keys(handlers) : undefined);
    } catch (err) {
      log.warn('could not claim jobs (database unavailable?)', { error: err });
    }
    for (const job of jobs) {
      void queue.add(async () => {
        await run(job);
        wake(); // a slot is free: look for more at once
      });
    }
    return jobs.length === free;
  }

  let pollingNow = false;
  let wakeRequested = false;

  function schedule(ms: number): void {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      pollingNow = true;
      wakeRequested = false;
      polling = poll().then(
        (full) => {
          pollingNow = false;
          schedule(full || wakeRequested ? 0 : pollMs);
        },
        () => {
          pollingNow = false;
          schedule(pollMs);
        },
      );
    }, ms);
  }

  function wake(): void {
    wakeRequested = true;
    if (!pollingNow) schedule(0);
  }

  const periodicTimers = new Map<string, NodeJS.Timeout>();
  const periodicRuns = new Set<Promise<void>>();
  function schedulePeriodic(task: PeriodicTask, ms: number): void {
    if (stopped) return;
    periodicTimers.set(
      task.name,
      setTimeout(() => {
        const running = task
          .run({ sql, config, stopping: () => stopped })
          .catch((err) => log.warn('periodic task failed; it runs again at its next time', { task: task.name, error: err }))
          .finally(() => {
            periodicRuns.delete(running);
            schedulePeriodic(task, task.everyMs);
          });
        periodicRuns.add(running);
      }, ms).unref(),
    );
  }

  schedule(0);
  for (const task of opts.periodic ?? []) schedulePeriodic(task, task.firstAfterMs);
  log.info('job worker started', { worker_id: id, concurrency });

  return {
    id,
    async stop(graceMs = 20_000) {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      for (const t of periodicTimers.values()) clearTimeout(t);
      await polling;
      let graceTimer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([queue.onIdle(), ...periodicRuns]),
        new Promise((r) => {
          graceTimer = setTimeout(r, graceMs);
        }),
      ]);
      clearTimeout(graceTimer);
      queue.clear();
      const released = await releaseJobs(sql, id).catch(() => 0);
      log.info('job worker stopped', { worker_id: id, returned_to_queue: released });
    },
  };
}
