// Keeps the delivery log within the database's storage: raw bodies are dropped once they are
// older than DELIVERY_BODY_RETENTION (the row, its outcome and reply stay), in short batches, and
// each run records what it freed. Run periodically by the job worker (retentionTask), which
// also checks DATABASE_SIZE_LIMIT then. Freed space is reused by new rows once (auto)vacuum has
// seen it; the files do not shrink (that would take VACUUM FULL, which locks the table).
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { checkDatabaseSize } from '../db/stats.js';
import type { PeriodicTask } from '../jobs/worker.js';
import { log } from '../log.js';
import { dropOldBodies } from './deliveries.js';

/** Taken by each step of a run, so runs on several dynos take turns. */
const RETENTION_LOCK = 7_204_512_007;

export interface RetentionOptions {
  /** Skip the run when another started less than this long ago (several dynos run it). */
  minGapMs?: number;
  batchRows?: number;
  batchBytes?: number;
  /** Batches per run at most; the next run goes on from there. */
  maxBatches?: number;
  /** Pause between batches, so other work gets the database in between. */
  pauseMs?: number;
  /** True when the process is stopping: the run ends after its current batch. */
  stopping?: () => boolean;
}

export interface RetentionResult {
  runId: string | null;
  rows: number;
  bytes: number;
  batches: number;
  databaseBytes: number | null;
}

/** One retention run: drops old bodies (unless DELIVERY_BODY_RETENTION is 0), records the run
 * with what it freed, and checks the database's size against DATABASE_SIZE_LIMIT. */
export async function runRetention(sql: Sql, config: Config, opts: RetentionOptions = {}): Promise<RetentionResult> {
  const {
    minGapMs = 0,
    batchRows = 1000,
    batchBytes = 64 * 1024 * 1024,
    maxBatches = 1000,
    pauseMs = 20,
    stopping = () => false,
  } = opts;
  const retentionMs = config.DELIVERY_BODY_RETENTION;
  const run = await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${RETENTION_LOCK})`;
    if (minGapMs > 0) {
      const [recent] =
        await tx`select 1 from retention_runs where started_at > now() - ${minGapMs} * interval '1 millisecond' limit 1`;
      if (recent) return undefined;
    }
    const [row] = await tx<{ id: string; cutoff: Date | null; up_to_id: string }[]>`
      insert into retention_runs (cutoff, up_to_id)
      select case when ${retentionMs}::int8 > 0 then now() - ${retentionMs} * interval '1 millisecond' end,
             coalesce((select up_to_id from retention_runs where up_to_id is not null order by id desc limit 1), 0)
      returning id, cutoff, up_to_id`;
    return row!;
  });
  if (!run) return { runId: null, rows: 0, bytes: 0, batches: 0, databaseBytes: null };

  let rows = 0;
  let bytes = 0;
  let batches = 0;
  const cutoff = run.cutoff;
  if (cutoff) {
    for (let done = false; !done && batches < maxBatches && !stopping(); ) {
      if (batches > 0) await new Promise((r) => setTimeout(r, pauseMs));
      const batch = await sql.begin(async (tx) => {
        await tx`set local lock_timeout = '5s'`;
        await tx`select pg_advisory_xact_lock(${RETENTION_LOCK})`;
        const [progress] = await tx<{ up_to_id: string }[]>`select up_to_id from retention_runs where id = ${run.id}`;
        const dropped = await dropOldBodies(tx, progress!.up_to_id, cutoff, batchRows, batchBytes);
        await tx`
          update retention_runs set rows = rows + ${dropped.rows}, bytes = bytes + ${dropped.bytes}, batches = batches + 1,
                                    up_to_id = ${dropped.upTo}
           where id = ${run.id}`;
        return dropped;
      });
      rows += batch.rows;
      bytes += batch.bytes;
      batches++;
      done = batch.done;
    }
  }
  const size = await checkDatabaseSize(sql, config);
  await sql`update retention_runs set finished_at = now(), database_bytes = ${size.bytes} where id = ${run.id}`;
  log.info('delivery body retention', {
    run_id: run.id,
    cutoff: cutoff?.toISOString() ?? null,
    rows,
    bytes,
    batches,
    database_bytes: size.bytes,
  });
  return { runId: run.id, rows, bytes, batches, databaseBytes: size.bytes };
}

const HOUR = 60 * 60_000;

/** Drops delivery bodies older than DELIVERY_BODY_RETENTION and checks DATABASE_SIZE_LIMIT; once
 * an hour across all dynos (a dyno whose turn another took skips). */
export const retentionTask: PeriodicTask = {
  name: 'delivery-retention',
  everyMs: HOUR,
  firstAfterMs: 60_000,
  run: async ({ sql, config, stopping }) => {
    await runRetention(sql, config, { minGapMs: HOUR - 5 * 60_000, stopping });
  },
};
