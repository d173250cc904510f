// transactionWithDeadline (src/db/transaction.ts): deadlines that never turn into late writes,
// and connections lost mid-transaction that neither crash the process (postgres.js null-socket
// write, reproduced for real in a child process) nor wedge the pool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { COMMIT_CONFIRM_MS, DeadlineExceeded, transactionWithDeadline } from '../src/db/transaction.js';
import { deliveryCommitted, insertDelivery } from '../src/webhooks/deliveries.js';
import { databaseUrl, resetDatabase, testSql } from './helpers.js';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scripts/null-socket-write.ts');
const run = (mode: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', script, mode], { encoding: 'utf8', env: process.env, timeout: 60_000 });

describe('transactionWithDeadline', () => {
  before(() => resetDatabase());

  it('the postgres.js bug is real: with a plain sql.begin() a lost connection kills the process', () => {
    const r = run('raw');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /TypeError: Cannot read properties of null \(reading 'write'\)/);
    assert.match(r.stderr, /nextWrite .*postgres[\\/]src[\\/]connection\.js/);
    assert.doesNotMatch(r.stdout, /survived/);
  });

  it('our transactions survive the same losses: every round fails cleanly and the pool still works', () => {
    const r = run('service');
    assert.equal(r.status, 0, r.stderr);
    const m = /survived (\{.*\})/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const codes = JSON.parse(m[1]!) as Record<string, number>;
    assert.equal(codes.committed, undefined);
    assert.equal(codes['no answer'], undefined, 'every round was answered');
    assert.equal(
      Object.values(codes).reduce((a, b) => a + b, 0),
      30,
    );
  });

  it('a transaction that misses its deadline is answered at once and rolls back when it runs later', async () => {
    const sql = testSql();
    await sql`create table if not exists deadline_probe (n int)`;
    await sql`truncate deadline_probe`;
    // Hold a lock the transaction needs, past its deadline.
    let blockerDone = false;
    let locked!: () => void;
    const lockTaken = new Promise<void>((r) => (locked = r));
    const blocker = sql
      .begin(async (tx) => {
        await tx`lock table deadline_probe in exclusive mode`;
        locked();
        await new Promise((r) => setTimeout(r, 600));
      })
      .then(() => (blockerDone = true));
    await lockTaken;
    await assert.rejects(
      transactionWithDeadline(sql, 200, async (tx) => {
        await tx`insert into deadline_probe values (1)`;
      }),
      DeadlineExceeded,
    );
    assert.equal(blockerDone, false, 'answered at the deadline, not when the lock was freed');
    await blocker;
    await new Promise((r) => setTimeout(r, 200));
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from deadline_probe`;
    assert.equal(row!.n, 0, 'the abandoned insert was rolled back, not committed late');
    await sql`drop table deadline_probe`;
  });
});

/** A TCP proxy to PostgreSQL that cuts the client off once, around the first COMMIT it sees:
 * after forwarding it (PostgreSQL commits, the answer is lost) or before (nothing commits). */
async function commitCuttingProxy(target: URL, when: 'after-commit' | 'before-commit') {
  let cut = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    upstream.on('data', (d) => client.write(d));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.end());
    client.on('data', (d: Buffer) => {
      if (!cut && d.includes('commit\u0000')) {
        cut = true;
        if (when === 'after-commit') {
          upstream.write(d);
          // Let PostgreSQL commit, then drop the client before it hears the answer.
          upstream.removeAllListeners('data');
          setTimeout(() => client.destroy(), 300);
        } else {
          client.destroy();
          upstream.destroy();
        }
        return;
      }
      upstream.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(target);
  url.port = String((server.address() as net.AddressInfo).port);
  return { url: url.toString(), close: () => server.close() };
}

/** As deliveryCommitted() does for deliveries: insert the same key and roll back. The unique
 * index waits for the cut-off transaction to end, then says whether it committed. */
async function probeCommitted(sql: postgres.Sql, id: string): Promise<boolean> {
  try {
    await sql.begin(async (tx) => {
      await tx`insert into outcome_probe values (${id})`;
      throw new Error('rolled back');
    });
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return true;
    if ((err as Error).message === 'rolled back') return false;
    throw err;
  }
}

describe('transactionWithDeadline: a connection lost during COMMIT', () => {
  before(async () => {
    await testSql()`create table if not exists outcome_probe (id text primary key)`;
  });
  after(() => testSql()`drop table if exists outcome_probe`);

  for (const when of ['after-commit', 'before-commit'] as const) {
    it(`asks the database whether it committed (${when})`, async () => {
      const proxy = await commitCuttingProxy(new URL(databaseUrl()), when);
      // Unnamed statements: COMMIT goes out in one piece (Parse, Bind, Execute, Sync).
      const sql = postgres(proxy.url, { max: 1, prepare: false, onnotice: () => {} });
      try {
        const id = `${when}-${Date.now()}`;
        const attempt = transactionWithDeadline(
          sql,
          5000,
          async (tx) => {
            await tx`insert into outcome_probe values (${id})`;
            return id;
          },
          { wasCommitted: (r) => probeCommitted(sql, r) },
        );
        const outcome = await attempt.then(
          () => 'resolved',
          (e: { code?: string }) => `rejected ${e.code}`,
        );
        const row = { outcome, found: (await testSql()`select 1 from outcome_probe where id = ${id}`).length > 0 };
        if (when === 'after-commit') {
          assert.deepEqual(row, { outcome: 'resolved', found: true }, 'committed: reported as committed, not as an outage');
        } else {
          assert.equal(row.found, false);
          assert.match(row.outcome, /^rejected (CONNECTION_CLOSED|ECONNRESET)$/);
        }
      } finally {
        await sql.end({ timeout: 1 });
        proxy.close();
      }
    });
  }
});

describe('transactionWithDeadline: the confirmation of a lost COMMIT is bounded', () => {
  before(async () => {
    await testSql()`create table if not exists outcome_probe (id text primary key)`;
  });
  after(() => testSql()`drop table if exists outcome_probe`);

  it('stops asking at confirmUntil and reports the outcome unknown (answered 503 by the receiver)', async () => {
    const proxy = await commitCuttingProxy(new URL(databaseUrl()), 'after-commit');
    const sql = postgres(proxy.url, { max: 1, prepare: false, onnotice: () => {} });
    try {
      const id = `bounded-${Date.now()}`;
      let asked = 0;
      const started = Date.now();
      const outcome = await transactionWithDeadline(
        sql,
        5000,
        async (tx) => {
          await tx`insert into outcome_probe values (${id})`;
          return id;
        },
        { wasCommitted: () => (asked++, new Promise<boolean>(() => {})), confirmUntil: Date.now() + 1000 },
      ).then(
        () => 'resolved',
        (e: Error) => e.constructor.name,
      );
      assert.equal(outcome, 'CommitOutcomeUnknown');
      assert.ok(asked >= 1);
      // Generous: the default confirmation alone would take COMMIT_CONFIRM_MS.
      assert.ok(Date.now() - started < 1000 + COMMIT_CONFIRM_MS - 500, `answered after ${Date.now() - started} ms`);
    } finally {
      await sql.end({ timeout: 1 });
      proxy.close();
    }
  });
});

describe('deliveryCommitted: the outcome of a transaction whose connection was cut', () => {
  before(() => resetDatabase());

  for (const ending of ['commit', 'rollback'] as const) {
    it(`waits for a transaction still in progress, then sees its ${ending}`, async () => {
      const sql = testSql();
      let finish!: () => void;
      let inserted!: (id: string) => void;
      const idOf = new Promise<string>((r) => (inserted = r));
      const other = sql
        .begin(async (tx) => {
          const id = await insertDelivery(tx, {
            version: 'v1',
            type: 'event.update',
            path: '/webhooks/tixstock',
            headers: {},
            body: Buffer.from('{}'),
            bodySha256: Buffer.alloc(32),
            redacted: false,
            outcome: 'applied',
            status: 200,
            reply: {},
          });
          inserted(id);
          await new Promise<void>((r) => (finish = r));
          if (ending === 'rollback') throw new Error('rolled back on purpose');
        })
        .catch(() => {});
      const id = await idOf;
      let answered = false;
      const answer = deliveryCommitted(sql, id).then((v) => {
        answered = true;
        return v;
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(answered, false, 'no answer while that transaction is in progress');
      finish();
      await other;
      assert.equal(await answer, ending === 'commit');
      const [row] = await sql`select count(*)::int as n from deliveries where id = ${id}`;
      assert.equal(row!.n, ending === 'commit' ? 1 : 0, 'the probe left nothing behind');
    });
  }

  it("a webhook's body is let go once answered (in a fresh process: nothing cached holds it)", () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(path.dirname(script), 'body-retention.ts')], {
      encoding: 'utf8',
      env: process.env,
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, outcome: 'applied', retained: false });
  });
});
