// Plain numbered SQL files in sql/, applied in order, each once, each in its own transaction,
// recorded in schema_migrations. An advisory lock makes concurrent boots (several dynos, the
// release phase) safe: one applies, the others wait and then find nothing to do.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './connect.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** sql/ sits at the project root; from src/db or dist/src/db. */
export const SQL_DIR =
  [path.resolve(here, '../../sql'), path.resolve(here, '../../../sql')].find((d) => {
    try {
      return readdirSync(d).some((f) => f.endsWith('.sql'));
    } catch {
      return false;
    }
  }) ?? path.resolve(here, '../../sql');

const MIGRATION_LOCK = 7_204_512_001;

export function migrationFiles(dir = SQL_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort();
}

export async function migrate(sql: Sql, dir = SQL_DIR): Promise<string[]> {
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`create table if not exists schema_migrations (
      name text primary key, applied_at timestamptz not null default now())`;
    const done = new Set((await tx<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name));
    for (const file of migrationFiles(dir)) {
      if (done.has(file)) continue;
      await tx.unsafe(readFileSync(path.join(dir, file), 'utf8'));
      await tx`insert into schema_migrations (name) values (${file})`;
      applied.push(file);
    }
  });
  return applied;
}

/** True when every migration file has been applied (for /readyz). */
export async function isMigrated(sql: Sql, dir = SQL_DIR): Promise<boolean> {
  const files = migrationFiles(dir);
  const last = files[files.length - 1];
  if (!last) return true;
  const rows = await sql`select 1 from schema_migrations where name = ${last}`;
  return rows.length === 1;
}
