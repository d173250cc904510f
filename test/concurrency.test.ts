// Concurrent webhooks for the same listing are serialized by PostgreSQL (row locks), not by
// luck or in-process state: 100 concurrent holds of 1 on a listing of 100 leave exactly 0,
// in one process and spread over two processes on one database.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { addListing, api, type App, resetDatabase, sendWebhook, testApp, testSql, webhook, withQuantity } from './helpers.js';
import { postWebhook, startServer, type ServerProcess } from './server-process.js';

async function assertLedgerChain(listingId: string, holds: number) {
  const rows = await testSql()<{ reason: string; before: number | null; after: number }[]>`
    select reason, before, after from listing_quantity_changes where listing_id = ${listingId} order by id`;
  assert.equal(rows.length, holds + 1);
  // Each change starts from where the previous one ended: no lost update anywhere.
  for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.before, rows[i - 1]!.after, `ledger row ${i}`);
}

describe('concurrency', function () {
  this.timeout(120_000);
  let app: App;
  before(async () => {
    app = testApp({ DATABASE_POOL_SIZE: '10', WEBHOOK_BACKLOG: '200' }).app;
    await resetDatabase();
  });

  for (const [type, body, expected] of [
    ['hold', { hold_quantity: 1 }, 1],
    ['release', { release_quantity: 5 }, 2],
  ] as const) {
    it(`a ${type} that waits for another transaction's lock on the listing starts from what that one committed`, async () => {
      const id = await addListing(app, withQuantity(10));
      // Another webhook's transaction (an update to 2 tickets) holds the listing's lock.
      const other = await testSql().reserve();
      try {
        await other`begin`;
        await other`update listings set quantity = 2, quantity_ceiling = 2 where id = ${id}`;
        const waiting = sendWebhook(app, webhook(`ticket.${type}`, { external_id: id, ...body }));
        await new Promise((r) => setTimeout(r, 300));
        await other`commit`;
        const res = await waiting;
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.success, true);
      } finally {
        other.release();
      }
      const listing = (await api(app).get(`/api/listings/${id}`).expect(200)).body;
      assert.equal(listing.quantity, expected);
      const [last] = await testSql()<{ before: number; after: number }[]>`
        select before, after from listing_quantity_changes where listing_id = ${id} order by id desc limit 1`;
      assert.deepEqual({ ...last }, { before: 2, after: expected });
    });
  }

  it('100 concurrent holds of 1 on a listing of 100 leave exactly 0 (one process)', async () => {
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const id = await addListing(app, withQuantity(100));
      const replies = await Promise.all(
        Array.from({ length: 100 }, () => postWebhook(url, webhook('ticket.hold', { external_id: id, hold_quantity: 1 }))),
      );
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
      assert.ok(replies.every((r) => r.body.success === true));
      assert.equal((await api(app).get(`/api/listings/${id}`).expect(200)).body.quantity, 0);
      await assertLedgerChain(id, 100);
    } finally {
      server.close();
    }
  });

  describe('two server processes on one database', () => {
    let servers: ServerProcess[] = [];
    before(async () => {
      servers = await Promise.all([startServer(), startServer()]);
    });
    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
    });

    it('100 concurrent holds of 1, alternating between them, leave exactly 0', async () => {
      const id = await addListing(app, withQuantity(100));
      const replies = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          postWebhook(servers[i % 2]!.url, webhook('ticket.hold', { external_id: id, hold_quantity: 1 })),
        ),
      );
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [200], JSON.stringify(replies.find((r) => r.status !== 200)));
      assert.equal((await api(app).get(`/api/listings/${id}`).expect(200)).body.quantity, 0);
      await assertLedgerChain(id, 100);
    });

    it('more holds than tickets never go below 0, and concurrent releases never pass the ceiling', async () => {
      const id = await addListing(app, withQuantity(20));
      const replies = await Promise.all([
        ...Array.from({ length: 30 }, (_, i) =>
          postWebhook(servers[i % 2]!.url, webhook('ticket.hold', { external_id: id, hold_quantity: 1 })),
        ),
        ...Array.from({ length: 30 }, (_, i) =>
          postWebhook(servers[(i + 1) % 2]!.url, webhook('ticket.release', { external_id: id, release_quantity: 1 })),
        ),
      ]);
      assert.ok(replies.every((r) => r.status === 200));
      const rows = await testSql()<{ before: number; after: number }[]>`
        select before, after from listing_quantity_changes where listing_id = ${id} and before is not null order by id`;
      assert.equal(rows.length, 60);
      for (const r of rows) assert.ok(r.after >= 0 && r.after <= 20, `quantity ${r.after} within 0..20`);
      await assertLedgerChain(id, 60);
    });
  });
});
