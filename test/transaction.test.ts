// transactionWithDeadline (src/db/transaction.ts): deadlines that never turn into late writes,
// and connections lost mid-transaction that neither crash the process (postgres.js null-socket
// write, reproduced for real in a child process) nor wedge the pool.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeadlineExceeded, transactionWithDeadline } from '../src/db/transaction.js';
import { resetDatabase, testSql } from './helpers.js';

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
    assert.equal(Object.values(codes).reduce((a, b) => a + b, 0), 30);
  });

  it('a transaction that misses its deadline is answered at once and rolls back when it runs later', async () => {
    const sql = testSql();
    await sql`create table if not exists deadline_probe (n int)`;
    await sql`truncate deadline_probe`;
    // Hold a lock the transaction needs, past its deadline.
    let blockerDone = false;
    const blocker = sql.begin(async (tx) => {
      await tx`lock table deadline_probe in exclusive mode`;
      await new Promise((r) => setTimeout(r, 600));
    }).then(() => (blockerDone = true));
    await new Promise((r) => setTimeout(r, 50));
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
