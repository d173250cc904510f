// A transaction with a deadline that never turns into a late write.
//
// postgres.js queues queries while it reconnects, so a caller that simply stops waiting at a
// deadline leaves its transaction queued, and it runs once the database is back: a webhook
// answered 503 ("not applied") would be applied after all. So the deadline only sets a flag,
// and the transaction checks it as its first and last step: an abandoned transaction rolls
// back whenever it finally runs. Once the body has finished and COMMIT is on its way the
// deadline no longer applies: we wait for the commit's answer rather than misreport it.
import type { Sql, Tx } from './connect.js';

export class DeadlineExceeded extends Error {
  constructor(ms: number) {
    super(`database did not answer within ${ms} ms`);
  }
}

class Abandoned extends Error {}

export async function transactionWithDeadline<T>(sql: Sql, deadlineMs: number, body: (tx: Tx) => Promise<T>): Promise<T> {
  const state = { abandoned: false, committing: false };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (state.committing) return;
      state.abandoned = true;
      reject(new DeadlineExceeded(deadlineMs));
    }, deadlineMs);
  });
  const work = sql.begin(async (tx) => {
    if (state.abandoned) throw new Abandoned();
    const result = await body(tx);
    if (state.abandoned) throw new Abandoned();
    state.committing = true;
    return result;
  }) as Promise<T>;
  work.catch(() => {}); // when the deadline wins, the rollback's error has no one to tell
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED',
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '53300', // too many connections
  '40001', '40P01', // serialization failure, deadlock: safe to retry later
  '25006', // read-only transaction (a replica during fail-over)
]);

/** True for errors that mean "the database is not available right now" rather than a bug:
 * answered 503 + Retry-After, and Tixstock retries. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DeadlineExceeded) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return UNAVAILABLE_CODES.has(code) || code.startsWith('08');
}

/** PostgreSQL "data exception" (class 22): a value the database cannot store, e.g. \u0000 in
 * text. That is bad input, not a bug. */
export function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}
