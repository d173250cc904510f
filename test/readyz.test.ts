// /readyz answers from a cache of one second: a flood of probes asks the database once.
import assert from 'node:assert/strict';
import request from 'supertest';
import { createApp } from '../src/app.js';
import { testConfig, testSql } from './helpers.js';

describe('/readyz', () => {
  it('asks the database at most once a second', async () => {
    const sql = testSql();
    let now = 1_000_000;
    const app = createApp({ sql, config: testConfig(), now: () => now });
    const [last] = await sql`select name from schema_migrations order by name desc limit 1`;
    await request(app).get('/readyz').expect(200);
    // Not migrated any more: the cached answer stays until its second is over.
    await sql`delete from schema_migrations where name = ${last!.name}`;
    try {
      now += 900;
      const replies = await Promise.all(Array.from({ length: 20 }, () => request(app).get('/readyz')));
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
      now += 200;
      const fresh = await request(app).get('/readyz').expect(503);
      assert.match(fresh.body.message, /migrations are not applied/);
    } finally {
      await sql`insert into schema_migrations (name) values (${last!.name}) on conflict do nothing`;
    }
    now += 1000;
    await request(app).get('/readyz').expect(200);
  });
});
