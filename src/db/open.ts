// The database a process uses: DATABASE_URL when set, otherwise an embedded PostgreSQL in
// ./.data/ (development and tests; nothing to install).
import { createHash } from 'node:crypto';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import type { Config } from '../config.js';
import { log } from '../log.js';
import { connect, type Sql } from './connect.js';

export interface Database {
  sql: Sql;
  /** Holds' and releases' own connections (hotPoolSize), or `sql` itself when the pool is too small to split. */
  hot: Sql;
  /** Closes the pool, and stops the embedded server if this process started it. */
  close(): Promise<void>;
  embedded: boolean;
}

/** ./.data/postgres, unless EMBEDDED_POSTGRES_DIR says otherwise. As root, PostgreSQL runs as
 * the user postgres; when it cannot reach ./.data (a project under /root), the data goes to
 * a folder of this project's under the system's temporary folder instead. */
function embeddedDataDir(dataDirUnreachable: (dir: string) => string | undefined): string {
  if (process.env.EMBEDDED_POSTGRES_DIR) return path.resolve(process.env.EMBEDDED_POSTGRES_DIR);
  const local = path.resolve('.data/postgres');
  if (userInfo().uid !== 0 || !dataDirUnreachable(local)) return local;
  const project = createHash('sha256').update(process.cwd()).digest('hex').slice(0, 12);
  const fallback = path.join(tmpdir(), `tixstock-${project}`, 'postgres');
  log.warn('the user postgres cannot reach ./.data: keeping the embedded database elsewhere', { dir: fallback });
  return fallback;
}

export async function databaseUrl(config: Config): Promise<{ url: string; stop: () => Promise<void>; embedded: boolean }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => {}, embedded: false };
  const { startEmbeddedPostgres, dataDirUnreachable } = await import('./embedded.js');
  const dataDir = embeddedDataDir(dataDirUnreachable);
  log.info('DATABASE_URL is unset: using embedded PostgreSQL', { dir: dataDir, port: config.EMBEDDED_POSTGRES_PORT });
  const pg = await startEmbeddedPostgres({ dataDir, port: config.EMBEDDED_POSTGRES_PORT, log: (l) => log.warn(l) });
  return { url: pg.url, stop: pg.stop, embedded: true };
}

/** Of DATABASE_POOL_SIZE, the connections holds and releases have to themselves: their batches
 * are sent unreserved and pipelined, one in flight per connection (db/group-commit.ts), so they
 * must never wait in a pipeline behind another kind of query. 0 (shared) when the pool has fewer
 * than 2. */
export function hotPoolSize(config: Config): number {
  if (config.DATABASE_POOL_SIZE < 2) return 0;
  const wanted = config.DATABASE_HOT_POOL_SIZE ?? Math.floor(config.DATABASE_POOL_SIZE / 4);
  return Math.min(Math.max(1, wanted), config.DATABASE_POOL_SIZE - 1);
}

export async function openDatabase(config: Config, applicationName?: string): Promise<Database> {
  const { url, stop, embedded } = await databaseUrl(config);
  const hotSize = hotPoolSize(config);
  const sql = connect(url, { max: config.DATABASE_POOL_SIZE - hotSize, applicationName });
  const hot = hotSize > 0 ? connect(url, { max: hotSize, applicationName: `${applicationName ?? 'tixstock-service'}-hot` }) : sql;
  return {
    sql,
    hot,
    embedded,
    async close() {
      await Promise.all([sql.end({ timeout: 5 }), hot !== sql && hot.end({ timeout: 5 })]);
      await stop();
    },
  };
}
