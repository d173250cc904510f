// The Procfile's release command: applies pending migrations and exits non-zero on error, which
// fails the Heroku release before any new dyno starts.
import { loadConfig } from './config.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './db/open.js';

const config = loadConfig();
const db = await openDatabase(config, 'tixstock-release');
try {
  const applied = await migrate(db.sql);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'migrations: up to date\n');
} catch (err) {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await db.close();
}
