// One postgres.js pool per process. Timeouts are short on purpose: when PostgreSQL is gone a
// webhook must fail fast with 503 (Tixstock retries), never hang.
import { isOnThisMachine } from '../config.js';
import postgres from 'postgres';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;
/** A piece of SQL, not yet sent, to nest in a statement. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

export interface ConnectOptions {
  max: number;
  /** Seconds to wait for a new connection before failing. */
  connectTimeout?: number;
  applicationName?: string;
}

/** A value as a jsonb parameter; null and undefined as SQL null. */
export const jsonOrNull = (db: Sql | Tx, v: unknown) => (v === null || v === undefined ? null : db.json(v as never));

/** The end of a list's query: `where` each column equals its value (those given), ids after
 * `after`, oldest first, `limit` rows. */
export function pageWhere(db: Sql, equal: Record<string, string | undefined>, page: { after?: string; limit: number }): Fragment {
  const given = Object.entries(equal).filter((e): e is [string, string] => Boolean(e[1]));
  const conditions = given.reduce<Fragment>((parts, [column, value]) => db`${parts} and ${db(column)} = ${value}`, db``);
  return db`where true ${conditions} ${page.after ? db`and id > ${page.after}` : db``} order by id limit ${page.limit}`;
}

/** TLS is required unless the server is on this machine. Heroku Postgres certificates are not
 * verifiable by a client (no CA is published), so TLS is used without verification there. */
export function sslFor(url: string): false | 'require' {
  if (isOnThisMachine(url)) return false;
  const mode = new URL(url).searchParams.get('sslmode');
  if (mode === 'disable') return false;
  return 'require';
}

export function connect(url: string, opts: ConnectOptions): Sql {
  return releasingOrigins(
    postgres(url, {
      max: opts.max,
      ssl: sslFor(url),
      connect_timeout: opts.connectTimeout ?? 3,
      idle_timeout: 60,
      onnotice: () => {},
      connection: { application_name: opts.applicationName ?? 'tixstock-service' },
    }),
  );
}

/**
 * postgres.js keeps, per query template, the Error it made at the template's first use (to
 * show where a failed query came from). V8 keeps such an Error's stack unformatted until it is
 * read, and an unformatted stack holds the functions of its frames and everything their
 * closures reach: the first fulfilment through each statement stayed in memory for good (its
 * body and PDF, tens of MB; tested by test/scripts/body-retention.ts).
 * So: each query's `origin` is read once, which formats that stack into a string; and the
 * function given to begin() is reachable only while its transaction runs, because the COMMIT
 * and ROLLBACK postgres.js sends itself keep their first transaction's begin() in such a stack.
 * (postgres.js's `debug` option avoids the cache too, but makes a fresh Error per query, which
 * costs throughput on the hot path.) Applied to the pool here; transaction.ts applies it to the
 * transaction and reserved handles it is given.
 */
export function releasingOrigins<T extends Sql | Tx>(db: T): T {
  return new Proxy(db, {
    apply(target, thisArg, args) {
      const q = Reflect.apply(target, thisArg, args) as { origin?: unknown };
      if (q instanceof Promise) void q.origin;
      return q;
    },
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'begin' || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const at = typeof args[0] === 'function' ? 0 : 1;
        const holder: { fn: ((tx: Tx) => unknown) | null } = { fn: args[at] as (tx: Tx) => unknown };
        args[at] = (tx: Tx) => holder.fn!(releasingOrigins(tx));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).finally(() => {
          holder.fn = null;
        });
      };
    },
  });
}
