// The periodic reconciliation (RECONCILE_INTERVAL): one job row at a time across all processes,
// run by the job worker; each run, when it ends, queues the next one an interval later.
import type { Config } from '../config.js';
import type { Sql, Tx } from '../db/connect.js';
import { enqueueJob, hasOpenJob } from '../jobs/queue.js';
import type { JobHandler } from '../jobs/worker.js';
import { log } from '../log.js';
import type { TixstockClient } from '../tixstock/contract.js';
import { runOptionsFrom, startRun } from './run.js';
import { RunInProgress } from './runs.js';

export const RECONCILE_JOB = 'reconcile.periodic';
const SCHEDULE_LOCK = 7_204_512_010;

/** Queues the next periodic run `RECONCILE_INTERVAL` after the last one started (or from now),
 * unless one is queued already. Safe on any number of processes at once. */
export async function schedulePeriodicReconciliation(db: Sql | Tx, config: Config): Promise<void> {
  if (config.RECONCILE_INTERVAL <= 0) return;
  const queue = async (tx: Tx) => {
    await tx`select pg_advisory_xact_lock(${SCHEDULE_LOCK})`;
    if (await hasOpenJob(tx, RECONCILE_JOB)) return;
    const [last] = await tx<{ at: Date | null }[]>`select max(started_at) as at from reconciliations`;
    const runAt = new Date(Math.max(Date.now(), (last?.at?.getTime() ?? Date.now()) + config.RECONCILE_INTERVAL));
    await enqueueJob(tx, { kind: RECONCILE_JOB, payload: {}, runAt });
  };
  if ('savepoint' in db) await queue(db);
  else await db.begin(queue);
}

/** The job handler of the periodic run, with the client it calls. */
export function reconcileJobs(tixstock: TixstockClient): Record<string, JobHandler> {
  const handler: JobHandler = async (job, { sql, config }) => {
    if (config.RECONCILE_INTERVAL <= 0) return;
    try {
      const { finished } = await startRun(sql, tixstock, {
        ...runOptionsFrom(config),
        repair: config.RECONCILE_REPAIR,
        requestedBy: 'schedule',
      });
      await finished; // a failed run is recorded as such; the schedule goes on
    } catch (err) {
      if (!(err instanceof RunInProgress)) throw err;
      log.info('periodic reconciliation skipped: a run is in progress', { job_id: job.id, running: err.runningId });
    }
    return (tx) => schedulePeriodicReconciliation(tx, config);
  };
  return { [RECONCILE_JOB]: handler };
}
