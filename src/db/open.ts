// The database a process uses: DATABASE_URL when set, otherwise an embedded PostgreSQL in
// ./.data/ (development and tests; nothing to install).
import path from 'node:path';
import type { Config } from '../config.js';
import { log } from '../log.js';
import { connect, type Sql } from './connect.js';

export interface Database {
  sql: Sql;
  /** Closes the pool, and stops the embedded server if this process started it. */
  close(): Promise<void>;
  embedded: boolean;
}

export const EMBEDDED_DATA_DIR = path.resolve(process.env.EMBEDDED_POSTGRES_DIR ?? '.data/postgres');

export async function databaseUrl(config: Config): Promise<{ url: string; stop: () => Promise<void>; embedded: boolean }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => {}, embedded: false };
  const { startEmbeddedPostgres } = await import('./embedded.js');
  log.info('DATABASE_URL is unset: using embedded PostgreSQL', { dir: EMBEDDED_DATA_DIR, port: config.EMBEDDED_POSTGRES_PORT });
  const pg = await startEmbeddedPostgres({ dataDir: EMBEDDED_DATA_DIR, port: config.EMBEDDED_POSTGRES_PORT, log: (l) => log.warn(l) });
  return { url: pg.url, stop: pg.stop, embedded: true };
}

export async function openDatabase(config: Config, applicationName?: string): Promise<Database> {
  const { url, stop, embedded } = await databaseUrl(config);
  const sql = connect(url, { max: config.DATABASE_POOL_SIZE, applicationName });
  return {
    sql,
    embedded,
    async close() {
      await sql.end({ timeout: 5 });
      await stop();
    },
  };
}
