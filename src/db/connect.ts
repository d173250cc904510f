// One postgres.js pool per process. Timeouts are short on purpose: when PostgreSQL is gone a
// webhook must fail fast with 503 (Tixstock retries), never hang.
import postgres from 'postgres';

export type Sql = postgres.Sql<{}>;
export type Tx = postgres.TransactionSql<{}>;

export interface ConnectOptions {
  max: number;
  /** Seconds to wait for a new connection before failing. */
  connectTimeout?: number;
  applicationName?: string;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]', '']);

/** TLS is required unless the server is on this machine. Heroku Postgres certificates are not
 * verifiable by a client (no CA is published), so TLS is used without verification there. */
export function sslFor(url: string): false | 'require' {
  const host = new URL(url).hostname;
  if (LOCAL_HOSTS.has(host) || host.startsWith('127.')) return false;
  const mode = new URL(url).searchParams.get('sslmode');
  if (mode === 'disable') return false;
  return 'require';
}

export function connect(url: string, opts: ConnectOptions): Sql {
  return releasingOrigins(postgres(url, {
    max: opts.max,
    ssl: sslFor(url),
    connect_timeout: opts.connectTimeout ?? 3,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? 'tixstock-service' },
  }));
}

/**
 * postgres.js keeps, per query template, the Error it made at the template's first use (to
 * show where a failed query came from). V8 keeps such an Error's stack unformatted until it is
 * read, and an unformatted stack holds the functions of its frames and everything their
 * closures reach: the first fulfilment through each statement stayed in memory for good (its
 * body and PDF, tens of MB; found with a heap snapshot). Reading each query's `origin` once
 * formats that stack into a string. (postgres.js's `debug` option avoids the cache too, but
 * makes a fresh Error per query: 15-20% fewer holds per second, measured.) Applied to the pool
 * here and to transaction and reserved handles in transaction.ts.
 */
export function releasingOrigins<T extends Sql | Tx>(db: T): T {
  return new Proxy(db, {
    apply(target, thisArg, args) {
      const q = Reflect.apply(target, thisArg, args) as { origin?: unknown };
      if (q instanceof Promise) void q.origin;
      return q;
    },
  });
}

/** The URL without its password, for log lines and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
