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
  return postgres(url, {
    max: opts.max,
    ssl: sslFor(url),
    connect_timeout: opts.connectTimeout ?? 3,
    idle_timeout: 60,
    onnotice: () => {},
    // Not for debugging: with a debug function postgres.js gives each query its own origin
    // Error. Without one, it keeps ONE Error per query template for the life of the process,
    // and V8 keeps that Error's unformatted stack, which holds the closures of the first call's
    // frames and everything they reach: the first fulfilment through each statement stayed in
    // memory for good (tens of MB: its body and PDF; found with a heap snapshot). The cost is
    // one short stack capture per query. (It also makes the query and parameters enumerable on
    // errors; log.ts records only name, message and code.)
    debug: () => {},
    connection: { application_name: opts.applicationName ?? 'tixstock-service' },
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
