// The sales calls on real service processes sharing one database: concurrent holds never
// oversell (the database decides, not a process), webhooks arriving meanwhile stay exact, and a
// process killed (kill -9) in the middle of a hold leaves nothing stuck for good.
import assert from 'node:assert/strict';
import { startSimulator, type Simulator } from '../src/tixstock/simulator.js';
import { addListing, API_TOKEN, resetDatabase, testApp, testSql, TOKEN, withQuantity, type App } from './helpers.js';
import { ledgerOf, quantityOf } from './sales-helpers.js';
import { startServer, type ServerProcess } from './server-process.js';

async function postHold(url: string, listingId: string, quantity: number) {
  const res = await fetch(`${url}/api/holds`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ listing_id: listingId, quantity }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every ledger row starts where the previous one ended: no lost update. */
async function assertLedgerChain(listingId: string) {
  const rows = await ledgerOf(listingId);
  for (let i = 1; i < rows.length; i++) assert.equal(rows[i]!.before, rows[i - 1]!.after, `ledger row ${i} (${rows[i]!.reason})`);
  return rows;
}

describe('sales on real processes', function () {
  this.timeout(120_000);
  let sim: Simulator;
  let app: App;
  before(async () => {
    await resetDatabase();
    sim = await startSimulator({ token: TOKEN, holdMinutes: 30 });
    app = testApp().app;
  });
  after(() => sim.close());

  describe('two processes on one database', () => {
    let servers: ServerProcess[] = [];
    before(async () => {
      const env = { TIXSTOCK_API_URL: sim.url, TIXSTOCK_API_RATE_PER_MINUTE: '100000', TIXSTOCK_API_TIMEOUT_MS: '5000' };
      servers = await Promise.all([startServer(env), startServer(env)]);
    });
    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
    });

    it('20 left here, 30 concurrent holds of 1 alternating between them: exactly 20 holds and 10 answers 409, Tixstock called 20 times', async () => {
      const id = await addListing(app, withQuantity(20));
      sim.putListing({ id, quantity: 100 });
      const from = sim.calls.length;
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => postHold(servers[i % 2]!.url, id, 1)));
      const count = (s: number) => replies.filter((r) => r.status === s).length;
      assert.deepEqual(
        [count(201), count(409)],
        [20, 10],
        JSON.stringify(replies.filter((r) => r.status !== 201 && r.status !== 409)),
      );
      assert.equal(sim.calls.slice(from).filter((c) => c.call === 'hold').length, 20);
      assert.deepEqual(await quantityOf(id), { quantity: 0, ceiling: 20 });
      const rows = await assertLedgerChain(id);
      assert.equal(rows.filter((r) => r.reason === 'our.hold').length, 20);
    });

    it("20 left at Tixstock, with other resellers' holds arriving as webhooks meanwhile: exactly 20 holds, 10 answers 409, quantities exact", async () => {
      // Tixstock: 30, of which other resellers hold 10 while ours run. Here: 10 more than at
      // Tixstock, so that Tixstock decides the split and nothing here is clamped at 0.
      const id = await addListing(app, withQuantity(40));
      sim.putListing({ id, quantity: 30 });
      const replies = await Promise.all([
        ...Array.from({ length: 30 }, (_, i) => postHold(servers[i % 2]!.url, id, 1)),
        ...Array.from({ length: 10 }, (_, i) =>
          sim.webhooks
            .otherHold(id, 1, servers[(i + 1) % 2]!.url)
            .then((r) => ({ status: r.status === 200 ? 0 : r.status, body: {} })),
        ),
      ]);
      const count = (s: number) => replies.filter((r) => r.status === s).length;
      assert.deepEqual(
        [count(201), count(409), count(0)],
        [20, 10, 10],
        JSON.stringify(replies.filter((r) => ![0, 201, 409].includes(r.status))),
      );
      assert.equal(sim.listing(id)!.quantity, 0);
      assert.deepEqual(await quantityOf(id), { quantity: 10, ceiling: 40 });
      const rows = await assertLedgerChain(id);
      assert.deepEqual(
        ['our.hold', 'our.hold.undone', 'ticket.hold'].map((reason) => rows.filter((r) => r.reason === reason).length),
        [30, 10, 10],
      );
    });
  });

  it("kill -9 while Tixstock delays its answer to a hold: the reservation stays, then another process's sweep brings the tickets back", async () => {
    const env = { TIXSTOCK_API_URL: sim.url, TIXSTOCK_HOLD_MINUTES: '0.05', TIXSTOCK_API_TIMEOUT_MS: '1000' };
    const id = await addListing(app, withQuantity(5));
    sim.putListing({ id, quantity: 5 });
    const doomed = await startServer(env);
    sim.fault({ call: 'hold', kind: 'slow', ms: 3000, times: 1 });
    const pending = postHold(doomed.url, id, 2).catch((err: Error) => ({ status: 0, body: { error: err.message } }));
    const until = Date.now() + 10_000;
    while (sim.calls.filter((c) => c.call === 'hold' && c.path.includes(id)).length === 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    assert.equal((await pending).status, 0, 'the request died with its process');
    const [h] = await testSql()<
      { id: string; status: string; expires_at: Date }[]
    >`select id, status, expires_at from holds where listing_id = ${id}`;
    assert.equal(h!.status, 'pending');
    assert.deepEqual(await quantityOf(id), { quantity: 3, ceiling: 5 }, 'kept off while Tixstock may hold them');

    const survivor = await startServer(env);
    try {
      const end = Date.now() + 30_000;
      for (;;) {
        const [row] = await testSql()<{ status: string }[]>`select status from holds where id = ${h!.id}`;
        if (row!.status === 'expired') break;
        assert.ok(Date.now() < end, 'the sweep expired the pending hold');
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(Date.now() >= h!.expires_at.getTime(), "not before Tixstock's hold would have expired");
      assert.deepEqual(await quantityOf(id), { quantity: 5, ceiling: 5 });
      assert.deepEqual(
        (await ledgerOf(id)).slice(-2).map((r) => r.reason),
        ['our.hold', 'our.hold.expired'],
      );
    } finally {
      await survivor.stop();
    }
  });
});
