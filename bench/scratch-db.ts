// A migrated embedded PostgreSQL of its own for a bench script that measures PostgreSQL alone
// (bench/hold-cost.ts, bench/statement-cost.ts): one event and 50 listings of 100,000 tickets.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { migrate } from '../src/db/migrate.js';
import { freePort, ROOT } from './processes.js';

export async function scratchDatabase(name: string, listingData = '{}') {
  const dataDir = path.join(ROOT, `.data/${name}-${process.pid}`);
  await rm(dataDir, { recursive: true, force: true });
  const pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  const stop = async () => {
    await sql.end({ timeout: 5 });
    await pg.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await migrate(sql);
    await sql`insert into events (id, name, data) values ('e1', 'bench', '{}')`;
    const listingIds = (
      await sql<{ id: string }[]>`
      insert into listings (event_id, broker_id, quantity, quantity_ceiling, display_price, tixstock_display_price, data)
      select 'e1', 'b1', 100000, 100000, '{}', '{}', ${listingData}::jsonb from generate_series(1, 50)
      returning id`
    ).map((r) => r.id);
    return { url: pg.url, sql, dataDir, listingIds, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
