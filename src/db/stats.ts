// How much of the database is used and by what, for GET /api/stats and the support page, and
// the warning logged when DATABASE_SIZE_LIMIT (the plan's storage) is 80% used.
import type { Config } from '../config.js';
import { log } from '../log.js';
import type { Sql } from './connect.js';

/** The share of DATABASE_SIZE_LIMIT from which a warning is logged. */
export const SIZE_WARNING_SHARE = 0.8;

export interface TableSize {
  name: string;
  /** All of it: table_bytes + toast_bytes + index_bytes. */
  total_bytes: number;
  /** The rows themselves (main fork, free space and visibility maps). */
  table_bytes: number;
  /** Large values stored out of line (bodies, PDFs), with the TOAST table's index. */
  toast_bytes: number;
  index_bytes: number;
  /** PostgreSQL's estimate (pg_class.reltuples, as of the last VACUUM or ANALYZE); -1 if never. */
  rows_estimate: number;
}

export interface RetentionRun {
  id: string;
  started_at: Date;
  finished_at: Date | null;
  cutoff: Date | null;
  rows: number;
  bytes: number;
  batches: number;
  database_bytes: number | null;
}

export interface DatabaseSize {
  bytes: number;
  limit_bytes: number | null;
  used_percent: number | null;
  /** At or above SIZE_WARNING_SHARE of the limit. */
  warning: boolean;
}

export async function databaseSize(sql: Sql, config: Config): Promise<DatabaseSize> {
  const [row] = await sql<{ bytes: number }[]>`select pg_database_size(current_database())::float8 as bytes`;
  const bytes = row!.bytes;
  const limit = config.DATABASE_SIZE_LIMIT ?? null;
  return {
    bytes,
    limit_bytes: limit,
    used_percent: limit ? Math.round((bytes / limit) * 1000) / 10 : null,
    warning: limit !== null && bytes >= limit * SIZE_WARNING_SHARE,
  };
}

/** The database's size, with a warning logged when it is at or above 80% of DATABASE_SIZE_LIMIT. */
export async function checkDatabaseSize(sql: Sql, config: Config): Promise<DatabaseSize> {
  const size = await databaseSize(sql, config);
  if (size.warning) {
    log.warn('database storage is 80% used or more', {
      database_bytes: size.bytes,
      limit_bytes: size.limit_bytes,
      used_percent: size.used_percent,
    });
  }
  return size;
}

export async function largestTables(sql: Sql, limit = 10): Promise<TableSize[]> {
  return sql<TableSize[]>`
    select name, total_bytes, table_bytes - toast_bytes as table_bytes, toast_bytes, index_bytes, rows_estimate
      from (select c.relname as name,
                   pg_total_relation_size(c.oid)::float8 as total_bytes,
                   pg_table_size(c.oid)::float8 as table_bytes,
                   coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::float8 as toast_bytes,
                   pg_indexes_size(c.oid)::float8 as index_bytes,
                   c.reltuples::float8 as rows_estimate
              from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and n.nspname = current_schema()) t
     order by total_bytes desc, name
     limit ${limit}`;
}

/** The last retention run that finished, and what all runs freed. */
export async function retentionSummary(
  sql: Sql,
): Promise<{ last_run: RetentionRun | null; runs: number; rows: number; bytes: number }> {
  const [[last], [total]] = await Promise.all([
    sql<RetentionRun[]>`
      select id, started_at, finished_at, cutoff, rows, bytes::float8 as bytes, batches, database_bytes::float8 as database_bytes
        from retention_runs where finished_at is not null order by id desc limit 1`,
    sql<{ runs: number; rows: number; bytes: number }[]>`
      select count(*)::int as runs, coalesce(sum(rows), 0)::float8 as rows, coalesce(sum(bytes), 0)::float8 as bytes
        from retention_runs where finished_at is not null`,
  ]);
  return { last_run: last ?? null, ...total! };
}

/** 30d, 24h, 90m: a retention in the units it was most likely given in. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms / 1000}s`;
}

export interface StorageStats {
  database: DatabaseSize;
  tables: TableSize[];
  retention: { body_retention: string; body_retention_ms: number } & Awaited<ReturnType<typeof retentionSummary>>;
}

export async function storageStats(sql: Sql, config: Config): Promise<StorageStats> {
  const [database, tables, retention] = await Promise.all([databaseSize(sql, config), largestTables(sql), retentionSummary(sql)]);
  return {
    database,
    tables,
    retention: {
      body_retention: formatDuration(config.DELIVERY_BODY_RETENTION),
      body_retention_ms: config.DELIVERY_BODY_RETENTION,
      ...retention,
    },
  };
}
