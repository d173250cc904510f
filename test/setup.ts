// Mocha global fixture: one real PostgreSQL (embedded) for the whole run, in a fresh data
// directory of its own on a free port, so that several runs (and a developer's `npm start`)
// can share the machine. Its URL is put in TEST_DATABASE_URL for tests and child processes.
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrate.js';
import { closeTestSql, freePort } from './helpers.js';

let pg: EmbeddedPostgres | undefined;
// Under the system's temporary folder: as root, PostgreSQL runs as the user postgres, which
// must be able to reach the folder (a clone under /root would not do).
const dataDir = path.join(tmpdir(), `tixstock-test-${process.pid}`);

export async function mochaGlobalSetup() {
  process.env.LOG_LEVEL ??= 'silent';
  if (!process.env.TEST_DATABASE_URL) {
    await rm(dataDir, { recursive: true, force: true });
    pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
    process.env.TEST_DATABASE_URL = pg.url;
  }
  const sql = postgres(process.env.TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  await migrate(sql);
  await sql.end();
}

/** After every test file: what the files share is closed, so mocha exits without `exit: true`;
 * a handle left open by a test shows as a run that does not end. */
export const mochaHooks = {
  async afterAll() {
    await closeTestSql();
  },
};

export async function mochaGlobalTeardown() {
  if (pg) {
    await pg.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
