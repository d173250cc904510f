// Reconciliation runs as rows (reconciliations, reconciliation_differences; sql/0010). Only this
// module writes them. One run at a time across all processes: the partial unique index on
// status = 'running' refuses a second one, and a run that has not heartbeat for STALE_AFTER_MS
// (its process died) is failed by the next one that starts.
import type { z } from 'zod';
import type { Sql, Tx } from '../db/connect.js';
import { isSerialId } from '../ids.js';
import type { AsRead, reconciliation } from '../replies.js';
import type { Difference } from './compare.js';

export const STALE_AFTER_MS = 2 * 60_000;

export class RunInProgress extends Error {
  constructor(readonly runningId: string) {
    super(`reconciliation ${runningId} is running; one run at a time`);
  }
}

export type RunRow = AsRead<z.infer<typeof reconciliation>>;

const RUN_COLUMNS = (sql: Sql) => sql`
  id::text, status, repair, requested_by, started_at, finished_at, pages, listings_checked, without_id, imported,
  differences as difference_count, error`;

export async function createRun(sql: Sql, p: { repair: boolean; requestedBy: string; staleAfterMs?: number }): Promise<string> {
  const staleMs = p.staleAfterMs ?? STALE_AFTER_MS;
  try {
    return await sql.begin(async (tx) => {
      await tx`
        update reconciliations
           set status = 'failed', finished_at = now(),
               error = 'abandoned: no progress since ' || to_char(heartbeat_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC (its process stopped)'
         where status = 'running' and heartbeat_at < now() - ${staleMs} * interval '1 millisecond'`;
      const [row] = await tx<{ id: string }[]>`
        insert into reconciliations (repair, requested_by) values (${p.repair}, ${p.requestedBy}) returning id::text`;
      return row!.id;
    });
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
    const [running] = await sql<{ id: string }[]>`select id::text from reconciliations where status = 'running'`;
    throw new RunInProgress(running?.id ?? '?');
  }
}

/** Keeps the run alive; false when it is no longer running (another process failed it as stale). */
export async function heartbeat(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`update reconciliations set heartbeat_at = now() where id = ${id} and status = 'running' returning id`;
  return rows.length === 1;
}

/** A page's counts and differences, in the transaction of its repairs (one statement).
 * False when the run is no longer running (another process failed it as stale): the caller
 * rolls the page back. The run's row is locked from here to the commit, so call it last. */
export async function recordPage(
  tx: Tx,
  id: string,
  p: {
    pages: number;
    listings: number;
    withoutId: number;
    imported: number;
    differences: Difference[];
  },
): Promise<boolean> {
  const rows = p.differences.map((d) => ({
    listing_id: d.listing_id,
    field: d.field,
    action: d.action,
    note: d.note ?? null,
    ours: d.ours ?? null,
    tixstock: d.tixstock ?? null,
  }));
  const [row] = await tx<{ alive: boolean }[]>`
    with differences as (
      insert into reconciliation_differences (reconciliation_id, listing_id, field, ours, tixstock, action, note)
      select ${id}, listing_id, field, ours, tixstock, action, note
        from json_to_recordset(${JSON.stringify(rows)}::text::json)
          as d(listing_id text, field text, ours jsonb, tixstock jsonb, action text, note text)
    ), counted as (
      update reconciliations
         set pages = pages + ${p.pages}, listings_checked = listings_checked + ${p.listings}, without_id = without_id + ${p.withoutId},
             imported = imported + ${p.imported}, differences = differences + ${p.differences.length}, heartbeat_at = now()
       where id = ${id} and status = 'running'
      returning id
    )
    select count(*) = 1 as alive from counted`;
  return row!.alive;
}

export async function finishRun(sql: Sql, id: string, status: 'done' | 'failed', error: string | null = null): Promise<void> {
  await sql`
    update reconciliations set status = ${status}, error = ${error}, finished_at = now()
     where id = ${id} and status = 'running'`;
}

export const MAX_DIFFERENCES_SHOWN = 5000;

export async function getRun(sql: Sql, id: string) {
  if (!isSerialId(id)) return undefined;
  const [run] = await sql<RunRow[]>`select ${RUN_COLUMNS(sql)} from reconciliations where id = ${id}`;
  if (!run) return undefined;
  const differences = await sql<(Difference & { note: string | null })[]>`
    select listing_id, field, ours, tixstock, action, note from reconciliation_differences
     where reconciliation_id = ${id} order by id limit ${MAX_DIFFERENCES_SHOWN}`;
  return { ...run, differences: [...differences] };
}

export async function listRuns(sql: Sql, f: { limit: number; before?: string }) {
  return sql<RunRow[]>`
    select ${RUN_COLUMNS(sql)} from reconciliations
     where true ${f.before ? sql`and id < ${f.before}` : sql``}
     order by id desc
     limit ${f.limit}`;
}

export async function lastRun(sql: Sql) {
  const [row] = await sql<{ id: string }[]>`select id::text from reconciliations order by id desc limit 1`;
  return row ? getRun(sql, row.id) : undefined;
}
