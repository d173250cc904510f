// Reproduces postgres.js's null-socket write (see src/db/transaction.ts) the way a webhook
// meets it: the backend of a transaction's connection dies (PostgreSQL restarting, failing
// over, an admin terminating it) while the transaction is between two statements.
//   mode "raw":     plain sql.begin(): postgres.js writes the next statement (or its ROLLBACK) to
//                   the closed socket and the process dies with an uncaught TypeError;
//   mode "service": our transactionWithDeadline(): every round fails cleanly, the process lives
//                   and the pool still answers. Prints "survived" and the error codes seen.
import postgres from 'postgres';
import { transactionWithDeadline } from '../../src/db/transaction.js';

const mode = process.argv[2] ?? 'raw';
const url = process.env.TEST_DATABASE_URL!;
let sql = postgres(url, { max: 2, onnotice: () => {} });
const killer = postgres(url, { max: 1, onnotice: () => {} });
const codes: Record<string, number> = {};

// The crash needs an unlucky moment: raw mode keeps trying (it usually dies within a few rounds).
const rounds = mode === 'raw' ? 300 : 30;
for (let round = 0; round < rounds; round++) {
  const body = async (tx: postgres.TransactionSql) => {
    const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await killer`select pg_terminate_backend(${row!.pid})`;
    // Between two statements, e.g. hashing a password: the connection closes meanwhile.
    await new Promise((r) => setTimeout(r, round % 2 ? 20 : 0));
    await tx`select 1`;
  };
  const run = mode === 'raw' ? sql.begin(body) : transactionWithDeadline(sql, 3000, body);
  const outcome = await Promise.race([
    run.then(
      () => 'committed',
      (err: { code?: string }) => String(err.code),
    ),
    new Promise<string>((r) => setTimeout(() => r('no answer'), mode === 'raw' ? 1000 : 3000)),
  ]);
  codes[outcome] = (codes[outcome] ?? 0) + 1;
  // A plain sql.begin() that did not crash this time can leave its pool wedged: start afresh.
  if (outcome === 'no answer' && mode === 'raw') sql = postgres(url, { max: 2, onnotice: () => {} });
}
// The pool still works. A connection whose backend was terminated may still be in the pool for
// a moment (the backend acts on the signal after it finished what it was doing, e.g. that
// round's COMMIT): its next query fails with 57P01, as a webhook on it would (answered 503).
// That is not being wedged; a query that fails three times in a row, or hangs, is.
for (let i = 0; i < 10; i++) {
  for (let attempt = 1; ; attempt++) {
    try {
      await sql`select 1`;
      break;
    } catch (err) {
      if (attempt === 3) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
process.stdout.write(`survived ${JSON.stringify(codes)}\n`);
await Promise.all([sql.end(), killer.end()]);
