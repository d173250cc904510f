// The job table: side work (mail) written in the same transaction as the change that causes
// it, and done after the commit by a worker. Claims use FOR UPDATE SKIP LOCKED, so any number
// of workers on any number of dynos take different rows, and a lease: a row whose worker died
// becomes due again when its lease runs out. Only this file writes the jobs table.
import type { Sql, Tx } from '../db/connect.js';

export interface Job {
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  order_id: string | null;
}

export async function enqueueJob(
  db: Sql | Tx,
  j: {
    kind: string;
    payload: Record<string, unknown>;
    orderId?: string | null;
    maxAttempts?: number;
    runAt?: Date;
  },
): Promise<string> {
  const [row] = await db<{ id: string }[]>`
    insert into jobs (kind, payload, order_id, max_attempts, run_at)
    values (${j.kind}, ${db.json(j.payload as never)}, ${j.orderId ?? null}, ${j.maxAttempts ?? 8}, coalesce(${j.runAt ?? null}::timestamptz, now()))
    returning id`;
  return row!.id;
}

/** Takes up to `limit` due jobs for `workerId` until the lease ends (only of `kinds`, when given).
 * Attempts count claims, so a job that crashes its worker every time still runs out of attempts. */
export async function claimJobs(sql: Sql, workerId: string, limit: number, leaseMs: number, kinds?: string[]): Promise<Job[]> {
  return sql<Job[]>`
    update jobs j
       set status = 'running', attempts = j.attempts + 1, locked_by = ${workerId},
           locked_until = now() + ${leaseMs} * interval '1 millisecond', updated_at = now()
      from (select id from jobs
             where ((status = 'pending' and run_at <= now()) or (status = 'running' and locked_until < now()))
               ${kinds ? sql`and kind = any(${kinds}::text[])` : sql``}
             order by run_at, id
             for update skip locked
             limit ${limit}) due
     where j.id = due.id
    returning j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.order_id`;
}

/** Marks a job done, if this worker still holds it. */
export async function completeJob(tx: Tx, job: Job, workerId: string): Promise<boolean> {
  const rows = await tx`
    update jobs set status = 'done', finished_at = now(), locked_by = null, locked_until = null, updated_at = now()
     where id = ${job.id} and locked_by = ${workerId} and status = 'running'
    returning id`;
  return rows.length === 1;
}

/** Records a failure: due again after `retryInMs`, or failed for good after max_attempts. */
export async function failJob(
  sql: Sql,
  job: Job,
  workerId: string,
  error: string,
  retryInMs: number,
): Promise<'retry' | 'failed'> {
  const [row] = await sql<{ status: 'pending' | 'failed' }[]>`
    update jobs
       set status = case when attempts >= max_attempts then 'failed' else 'pending' end,
           run_at = now() + ${retryInMs} * interval '1 millisecond',
           last_error = ${error.slice(0, 2000)}, locked_by = null, locked_until = null, updated_at = now(),
           finished_at = case when attempts >= max_attempts then now() end
     where id = ${job.id} and locked_by = ${workerId}
    returning status`;
  return row?.status === 'failed' ? 'failed' : 'retry';
}

/** Returns a stopping worker's unfinished jobs to the queue at once (not after the lease). */
/** Whether a job of `kind` is waiting or running. */
export async function hasOpenJob(db: Sql | Tx, kind: string): Promise<boolean> {
  const rows = await db`select 1 from jobs where kind = ${kind} and status in ('pending', 'running') limit 1`;
  return rows.length > 0;
}

export async function releaseJobs(sql: Sql, workerId: string): Promise<number> {
  const rows = await sql`
    update jobs set status = 'pending', attempts = greatest(attempts - 1, 0), locked_by = null, locked_until = null,
                    updated_at = now()
     where locked_by = ${workerId} and status = 'running'
    returning id`;
  return rows.length;
}

/** Puts a failed job back in the queue with fresh attempts (support's "retry"). */
export async function retryJob(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`
    update jobs set status = 'pending', attempts = 0, run_at = now(), finished_at = null, updated_at = now()
     where id = ${id} and status = 'failed'
    returning id`;
  return rows.length === 1;
}

export interface JobView {
  id: string;
  kind: string;
  status: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  max_attempts: number;
  order_id: string | null;
  last_error: string | null;
  run_at: Date;
  created_at: Date;
  updated_at: Date;
}

/** The columns of a JobView. */
const JOB_VIEW_COLUMNS = 'id, kind, status, attempts, max_attempts, order_id, last_error, run_at, created_at, updated_at';

export async function getJob(sql: Sql, id: string): Promise<JobView | undefined> {
  const [row] = await sql<JobView[]>`
    select ${sql.unsafe(JOB_VIEW_COLUMNS)}
      from jobs where id = ${id}`;
  return row;
}

/** Jobs that failed for good, or are waiting to retry after an error: support's "failed deliveries". */
export async function troubledJobs(sql: Sql, limit = 20): Promise<JobView[]> {
  return sql<JobView[]>`
    select ${sql.unsafe(JOB_VIEW_COLUMNS)}
      from jobs
     where status = 'failed' or (status in ('pending', 'running') and last_error is not null)
     order by updated_at desc, id desc
     limit ${limit}`;
}

export async function jobsOfOrder(sql: Sql, orderId: string, limit = 50): Promise<JobView[]> {
  return sql<JobView[]>`
    select ${sql.unsafe(JOB_VIEW_COLUMNS)}
      from jobs where order_id = ${orderId} order by id desc limit ${limit}`;
}

/** Job kinds that push a local change to Tixstock (see sales/sync.ts). */
export const TIXSTOCK_ORDER_UPDATE = 'tixstock.order_update';
export const TIXSTOCK_BROKER_CLOSE = 'tixstock.broker_close';

export interface SyncState {
  status: 'pending' | 'done' | 'failed';
  last_error: string | null;
  attempts: number;
  job_id: string | null;
  updated_at: Date | null;
}

/** Where the latest push of `kind` about `orderId` stands: pending (queued, running or waiting to
 * retry), done or failed (with the last error). Done when nothing was ever queued. */
export async function syncStateOfOrder(sql: Sql, orderId: string, kind: string): Promise<SyncState> {
  const [j] = await sql<{ id: string; status: string; last_error: string | null; attempts: number; updated_at: Date }[]>`
    select id, status, last_error, attempts, updated_at from jobs where order_id = ${orderId} and kind = ${kind} order by id desc limit 1`;
  if (!j) return { status: 'done', last_error: null, attempts: 0, job_id: null, updated_at: null };
  const status = j.status === 'done' ? 'done' : j.status === 'failed' ? 'failed' : 'pending';
  return { status, last_error: j.last_error, attempts: j.attempts, job_id: j.id, updated_at: j.updated_at };
}
