// Group commit: changes that arrive together go to PostgreSQL as ONE autocommit statement, so
// that they share its round trip, its planning and above all its commit (a WAL flush each).
// The hot webhooks, holds and releases, go this way (webhooks/process.ts).
//
// What each caller still gets, as if its change went alone:
// - its answer only once its change is committed (the statement's rows), never before;
// - a failure of its own: a batch that fails is sent again one item at a time, so one bad item
//   fails alone and the others are applied;
// - its deadline, and never a late write: at the earliest deadline of a batch the statement is
//   cancelled (postgres.js drops it unsent, or asks PostgreSQL to cancel it), and the
//   statement's own outcome decides: rows = committed, 57014 = rolled back, when the items
//   whose time is up get DeadlineExceeded (503) and the others go again in the next batch;
// - a lost connection asked about per item (wasCommitted, committed) until its confirmUntil,
//   then CommitOutcomeUnknown, as for a transaction (db/transaction.ts).
import type { PendingQuery, Row } from 'postgres';
import { CommitOutcomeUnknown, confirmCommit, DeadlineExceeded, isConnectionLost } from './transaction.js';

export interface GroupCommitOptions<I, R extends Row> {
  /** The one statement that applies a batch of items, with a row back per item. */
  statement(items: I[]): PendingQuery<R[]>;
  /** The row of a batch's rows that answers this item. */
  rowOf(rows: R[], item: I): R | undefined;
  /** Two items that lock the same thing (a listing's id) never share a batch: the later goes in
   * the next one, so that a batch changes each row once. null: it locks nothing. */
  lockOf(item: I): string | null;
  /** Batches in flight at once: as many as the pool has connections, so that each has one
   * and the next batch fills while they run. */
  inFlight: number;
  /** Items in one batch, at most. Default 32. */
  maxBatch?: number;
}

/** One caller's change and what is known of its bounds. */
export interface GroupCommitItem<I, R> {
  item: I;
  /** Date.now() by which it must be committed or given up (cancelled, never applied later). */
  deadlineAt: number;
  /** Date.now() until which a change whose connection was lost may be asked about. */
  confirmUntil: number;
  /** After a lost connection: whether its change is in the database, and then its row. */
  wasCommitted(): Promise<boolean>;
  committed(): Promise<R>;
}

interface Waiting<I, R> extends GroupCommitItem<I, R> {
  resolve(row: R): void;
  reject(err: unknown): void;
  /** Sent in a batch of its own: it was in a batch that failed. */
  alone: boolean;
  submittedAt: number;
}

export interface GroupCommit<I, R> {
  /** Applies one item with whatever else is waiting; resolves with its row once committed. */
  apply(change: GroupCommitItem<I, R>): Promise<R>;
}

export function groupCommit<I, R extends Row>(o: GroupCommitOptions<I, R>): GroupCommit<I, R> {
  const maxBatch = o.maxBatch ?? 32;
  let queue: Waiting<I, R>[] = [];
  let inFlight = 0;
  let expiry: NodeJS.Timeout | undefined;

  /** Those of `ws` whose deadline has passed are answered 503 (not applied); the rest returned. */
  function withTimeLeft(ws: Waiting<I, R>[]): Waiting<I, R>[] {
    const now = Date.now();
    const left: Waiting<I, R>[] = [];
    for (const w of ws) {
      if (w.deadlineAt > now) left.push(w);
      else w.reject(new DeadlineExceeded(now - w.submittedAt));
    }
    return left;
  }

  /** Waiting items are answered at their deadline even when no batch finishes before it. */
  function expire() {
    expiry = undefined;
    queue = withTimeLeft(queue);
    armExpiry();
  }

  function armExpiry() {
    if (expiry || queue.length === 0) return;
    const first = Math.min(...queue.map((w) => w.deadlineAt));
    expiry = setTimeout(expire, Math.max(0, first - Date.now()));
  }

  /** The next batch: the queue's items in order, skipping those whose lock is taken in it. */
  function takeBatch(): Waiting<I, R>[] {
    const batch: Waiting<I, R>[] = [];
    const locks = new Set<string>();
    const rest: Waiting<I, R>[] = [];
    for (const w of withTimeLeft(queue)) {
      const lock = o.lockOf(w.item);
      const fits =
        batch.length < maxBatch && (lock === null || !locks.has(lock)) && (batch.length === 0 || (!w.alone && !batch[0]!.alone));
      if (!fits) {
        rest.push(w);
        continue;
      }
      if (lock !== null) locks.add(lock);
      batch.push(w);
    }
    queue = rest;
    return batch;
  }

  function pump() {
    while (inFlight < o.inFlight && queue.length > 0) {
      const batch = takeBatch();
      if (batch.length > 0) send(batch);
    }
    if (queue.length === 0 && expiry) {
      clearTimeout(expiry);
      expiry = undefined;
    }
    armExpiry();
  }

  function send(batch: Waiting<I, R>[]) {
    inFlight++;
    let timer: NodeJS.Timeout | undefined;
    // Settled once: by the statement's outcome, or by giving up on a silent connection.
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      inFlight--;
      return true;
    };
    const committed = (rows: R[]) => {
      if (!settle()) return;
      for (const w of batch) {
        const row = o.rowOf(rows, w.item);
        if (row) w.resolve(row);
        else w.reject(new Error('the batch committed without a row for this change'));
      }
      pump();
    };
    const failed = (err: unknown) => {
      if (!settle()) return;
      if ((err as { code?: unknown }).code === '57014') {
        // Cancelled, so rolled back: those with time left go again.
        queue = [...withTimeLeft(batch), ...queue];
      } else if (isConnectionLost(err)) {
        for (const w of batch) {
          confirmCommit(w.item, () => w.wasCommitted(), err, w.confirmUntil)
            .then(() => w.committed())
            .then(w.resolve, w.reject);
        }
      } else if (batch.length > 1) {
        // Which item failed is not known: each goes again alone, and fails (or not) by itself.
        queue = [...batch.map((w) => ({ ...w, alone: true })), ...queue];
      } else {
        batch[0]!.reject(err);
      }
      // Not from within postgres.js's handling of the error: a query sent there, while it
      // closes a lost connection, is queued on that connection and lost with it.
      setImmediate(pump);
    };
    let query: ReturnType<PendingQuery<R[]>['execute']>;
    try {
      query = o.statement(batch.map((w) => w.item)).execute();
    } catch (err) {
      failed(err); // the statement could not even be built (a value it cannot send)
      return;
    }
    // One timer: at the batch's first deadline, cancel; then, at its first confirmUntil, stop waiting.
    timer = setTimeout(
      () => {
        void Promise.resolve(query.cancel()).catch(() => {});
        timer = setTimeout(
          () => {
            if (!settle()) return;
            for (const w of batch) w.reject(new CommitOutcomeUnknown(w.item));
            pump();
          },
          Math.max(0, Math.min(...batch.map((w) => w.confirmUntil)) - Date.now()),
        );
      },
      Math.max(0, Math.min(...batch.map((w) => w.deadlineAt)) - Date.now()),
    );
    query.then(committed, failed);
  }

  return {
    apply(change) {
      const now = Date.now();
      if (change.deadlineAt <= now) return Promise.reject(new DeadlineExceeded(0));
      return new Promise<R>((resolve, reject) => {
        queue.push({ ...change, resolve, reject, alone: false, submittedAt: now });
        pump();
      });
    },
  };
}
