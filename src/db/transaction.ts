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
    super(ms > 0 ? `database did not answer within ${ms} ms` : 'the deadline had passed before the database was asked');
  }
}

class Abandoned extends Error {}

/** The connection was lost while COMMIT was on its way and the database could not be asked
 * in time whether it committed. Answered 503 like any outage; logged for reconciliation. */
export class CommitOutcomeUnknown<T = unknown> extends Error {
  constructor(readonly result: T) {
    super('the connection was lost during COMMIT and the database could not be reached to confirm it');
  }
}

/** How long past its deadline a webhook whose COMMIT lost its connection may wait for the
 * database to come back and say whether it committed (typical restarts and fail-overs take a few
 * seconds). A COMMIT is only sent before the deadline, so this is at least the time it gets; with
 * the default deadline the answer still comes within 10 s of the webhook's first byte. */
export const COMMIT_CONFIRM_MS = 4000;

/** The connection under a transaction is gone, or the server is closing it (57P0x: shut down,
 * terminated): nothing more may be written to it, not even a ROLLBACK. */
const CONNECTION_LOST = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'ECONNRESET',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
]);
export const isConnectionLost = (err: unknown) => CONNECTION_LOST.has(String((err as { code?: unknown } | null)?.code));

function connectionLostError(): Error {
  return Object.assign(new Error('the connection of this transaction was lost'), { code: 'CONNECTION_CLOSED' });
}

/** tx, refusing to send anything once the connection is known to be lost (see below). */
function refuseAfterLoss(tx: Tx, state: { lost: boolean }): Tx {
  const check = () => {
    if (state.lost) throw connectionLostError();
  };
  return new Proxy(tx, {
    apply(target, thisArg, args) {
      check();
      return Reflect.apply(target, thisArg, args);
    },
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'unsafe' && typeof value === 'function') {
        return (...args: unknown[]) => {
          check();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return value;
    },
  });
}

/**
 * Runs body in a transaction, answering within deadlineMs.
 *
 * A lost connection is handled with care because of a postgres.js 3.4.x bug (porsager/postgres
 * #1154, #1208; unfixed in 3.4.9): a query sent on a transaction's connection after that
 * connection has closed is written from a setImmediate to a null socket, and the TypeError it
 * throws escapes every await and kills the process, with every webhook in flight. Reproduced
 * by test/scripts/null-socket-write.ts (run by test/transaction.test.ts). Two ways our code could send such a query:
 * - a later statement of the body, after the connection closed while the body was awaiting
 *   something else (scrypt, a lock wait that ended in a socket error): `refuseAfterLoss`
 *   makes tx throw instead of sending once begin() has reported the loss;
 * - postgres.js's own ROLLBACK, which begin() sends when the body throws: when the connection
 *   is lost, the body therefore never settles instead of throwing. begin() itself has already
 *   rejected (it races the body against the connection closing), so the caller still gets
 *   the error at once, and the stranded body is garbage once nothing refers to it.
 */
export interface TransactionOptions<T> {
  /** Asked when the connection is lost while COMMIT is on its way, so that the outcome is
   * unknown: are the transaction's effects in the database? Answering 503 for a transaction
   * that did commit would make Tixstock's retry apply it twice. */
  wasCommitted?: (result: T) => Promise<boolean>;
  /** Date.now() by which wasCommitted must have answered (the caller's own bound on its answer);
   * default: COMMIT_CONFIRM_MS after the connection was lost. */
  confirmUntil?: number;
}

export async function transactionWithDeadline<T>(
  sql: Sql,
  deadlineMs: number,
  body: (tx: Tx) => Promise<T>,
  opts: TransactionOptions<T> = {},
): Promise<T> {
  return withDeadline(deadlineMs, opts, (gate) => {
    const connection = { lost: false };
    const work = sql.begin(async (tx) => {
      try {
        if (gate.abandoned) throw new Abandoned();
        const result = await body(refuseAfterLoss(tx, connection));
        if (gate.abandoned) throw new Abandoned();
        gate.committing(result);
        return result;
      } catch (err) {
        if (connection.lost || isConnectionLost(err)) return new Promise<never>(() => {});
        throw err;
      }
    }) as Promise<T>;
    // Runs as soon as begin() rejects, before any later step of the body can send a query.
    work.catch((err) => {
      if (isConnectionLost(err)) connection.lost = true;
    });
    return work;
  });
}

/** What the work of a transaction with a deadline sees of it: `abandoned` is set when the
 * deadline passed (checked first and last), and `committing(result)` is called just before
 * COMMIT is sent, after which the deadline no longer applies. */
interface DeadlineGate<T> {
  abandoned: boolean;
  committing(result: T): void;
}

/** The rules both kinds of transaction share: answer by the deadline unless COMMIT is on its
 * way, and when the connection is lost during COMMIT ask wasCommitted. */
async function withDeadline<T>(
  deadlineMs: number,
  opts: TransactionOptions<T>,
  run: (gate: DeadlineGate<T>) => Promise<T>,
): Promise<T> {
  if (deadlineMs <= 0) throw new DeadlineExceeded(0); // no time left: not even attempted
  let committing: { result: T } | undefined;
  const gate: DeadlineGate<T> = {
    abandoned: false,
    committing: (result) => {
      committing = { result };
    },
  };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (committing) return;
      gate.abandoned = true;
      reject(new DeadlineExceeded(deadlineMs));
    }, deadlineMs);
  });
  const work = run(gate);
  work.catch(() => {}); // after a deadline nobody awaits it; its rollback is all that is left
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    if (!committing || !opts.wasCommitted || !isConnectionLost(err)) throw err;
    return await confirmCommit(committing.result, opts.wasCommitted, err, opts.confirmUntil ?? Date.now() + COMMIT_CONFIRM_MS);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with `value` if it settles before `deadlineAt`, else rejects with DeadlineExceeded:
 * for a step that writes nothing (taking an id ahead), so that it is simply not waited for. */
export async function beforeDeadline<T>(value: T | Promise<T>, deadlineAt: number): Promise<T> {
  if (!(value instanceof Promise)) return value;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      value,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineExceeded(0)), Math.max(0, deadlineAt - Date.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asks wasCommitted, until `until`, whether a change whose connection was lost (`lost`) is in
 * the database: resolves with `result` if so, throws `lost` if not, CommitOutcomeUnknown if the
 * database could not say in time. */
export async function confirmCommit<T>(
  result: T,
  wasCommitted: (result: T) => Promise<boolean>,
  lost: unknown,
  until: number,
): Promise<T> {
  while (Date.now() < until) {
    let answer: boolean | undefined;
    try {
      const wait = Math.min(1500, until - Date.now());
      answer = await Promise.race([
        wasCommitted(result),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer')), wait).unref()),
      ]);
    } catch {
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(250, until - Date.now())))); // still unreachable: ask again
      continue;
    }
    if (answer) return result;
    throw lost; // not committed: an ordinary outage
  }
  throw new CommitOutcomeUnknown(result);
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  '57P01',
  '57P02',
  '57P03', // admin shutdown, crash shutdown, cannot connect now
  '53300', // too many connections
  '40001',
  '40P01', // serialization failure, deadlock: safe to retry later
  '25006', // read-only transaction (a replica during fail-over)
]);

/** True for errors that mean "the database is not available right now" rather than a bug:
 * answered 503 + Retry-After, and Tixstock retries. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DeadlineExceeded || err instanceof CommitOutcomeUnknown) return true;
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
