// Environment -> typed configuration. Every variable is documented in README.md's
// configuration table; a wrong value stops start-up with a message naming the variable.
import bytes from 'bytes';
import { z } from 'zod';
import { LOG_LEVELS } from './log.js';

const optionalText = z
  .string()
  .trim()
  .transform((s) => (s === '' ? undefined : s))
  .optional();

const integer = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

const sizeInBytes = (example: string) =>
  z
    .string()
    .trim()
    .transform((s, ctx) => {
      const n = bytes.parse(s);
      if (n === null || !Number.isFinite(n) || n <= 0) {
        ctx.addIssue({ code: 'custom', message: `must be a size such as ${example} or 1048576` });
        return z.NEVER;
      }
      return n;
    });

const DURATION_UNITS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `30d`, `24h`, `90m`, `3600s` -> milliseconds; `0` -> 0 (never). */
const duration = (fallback: string, minMs: number) =>
  z
    .string()
    .trim()
    .default(fallback)
    .transform((s, ctx) => {
      if (s === '0') return 0;
      const m = /^(\d+(?:\.\d+)?)\s*([smhd])$/i.exec(s);
      const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase() as keyof typeof DURATION_UNITS]) : NaN;
      if (!(ms >= minMs)) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a duration such as 30d, 24h or 90m (at least ${minMs / 60_000} min), or 0 for never`,
        });
        return z.NEVER;
      }
      return ms;
    });

/** A size in bytes with a default: `50mb`, `1048576`, ... */
const size = (fallback: string) => z.string().trim().default(fallback).pipe(sizeInBytes('50mb'));
const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
    .default(fallback ? 'true' : 'false')
    .transform((s) => s === 'true' || s === '1' || s === 'yes');

const configSchema = z.object({
  /** "production" on Heroku (its Node.js buildpack sets it); anything else is development mode. */
  NODE_ENV: z.string().trim().default('development'),
  /** Development mode only: where missing secrets are generated and kept. */
  DEV_SECRETS_FILE: z.string().trim().min(1).default('.data/dev-secrets.json'),
  PORT: integer(3000, 0, 65535),
  DATABASE_URL: optionalText,
  /** Connections this process opens. Heroku's smallest plans allow 20 across all dynos. */
  DATABASE_POOL_SIZE: integer(8, 1, 500),
  /** Of DATABASE_POOL_SIZE, connections for holds and releases alone (default a quarter, at least 1). */
  DATABASE_HOT_POOL_SIZE: z.coerce.number().int().min(1).max(499).optional(),
  /** Port of the embedded PostgreSQL used when DATABASE_URL is unset. */
  EMBEDDED_POSTGRES_PORT: integer(54329, 1, 65535),
  TIXSTOCK_BEARER_TOKEN: optionalText.transform((s) =>
    (s ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== ''),
  ),
  API_TOKEN: optionalText,
  SUPPORT_PASSWORD: optionalText,
  SMTP_URL: optionalText,
  MAIL_FROM: optionalText.default('tixstock-service@localhost'),
  SUPPORT_EMAIL: optionalText,
  DISPLAY_PRICE_MARKUP_PERCENT: z
    .string()
    .trim()
    .regex(/^-?\d{1,6}(\.\d{1,6})?$/, 'must be a decimal number such as 12.5')
    .refine((s) => Number(s) > -100, 'must be above -100')
    .default('0'),
  WEBHOOK_BODY_LIMIT: size('50mb'),
  /** Bytes of webhook bodies held in memory at once (being read, waiting or applied); beyond it a
   * new webhook is answered 503 before its body is read. The default leaves a 512 MB dyno room
   * for the process itself (~150 MB) and the work on the large body being applied (~100 MB). */
  WEBHOOK_MEMORY_LIMIT: size('128mb'),
  /** Slowest upload accepted, in bytes per second once the first 2 s have passed; slower ones
   * are answered 408 and closed. */
  WEBHOOK_MIN_UPLOAD_RATE: size('100kb'),
  /** Webhooks one process applies at once; defaults to the pool size. A hold or release waiting
   * for its batch (db/group-commit.ts) takes no place. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(500).optional(),
  /** Large webhooks (bodies of 4 MB and more: ticket PDFs) applied at once, apart from the rest. */
  WEBHOOK_LARGE_CONCURRENCY: integer(1, 1, 100),
  /** Webhooks allowed to wait for a slot; beyond it the receiver answers 503 at once. */
  WEBHOOK_BACKLOG: integer(128, 0, 100000),
  /** A webhook not committed within this many ms of its first byte (reading and waiting
   * included) is abandoned and answered 503. */
  WEBHOOK_DEADLINE_MS: integer(5000, 100, 120000),
  /** Failed authentications a client may make per minute (API token and support password per IP
   * address, broker.authenticate per user name); beyond it they are refused until the minute ends. */
  AUTH_FAILURE_LIMIT: integer(10, 1, 100000),
  /** How long raw webhook bodies stay in the delivery log (ms; 0 = for ever). At least an hour,
   * so no body is dropped under a transaction still writing near it (retention.ts). */
  DELIVERY_BODY_RETENTION: duration('30d', 3_600_000),
  /** The plan's storage (essential-0: 1gb): a warning is logged when 80% of it is used. */
  DATABASE_SIZE_LIMIT: optionalText.pipe(sizeInBytes('1gb').optional()),
  /** Lines below this level are not written (log.ts reads the variable itself). */
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  /** Base URL of Tixstock's reseller API (the simulator's URL in development and tests). */
  TIXSTOCK_API_URL: z
    .string()
    .trim()
    .url('must be a URL such as https://api.tixstock.com/v1')
    .default('https://api.tixstock.com/v1'),
  /** How long one call to Tixstock may take before its outcome is unknown. */
  TIXSTOCK_API_TIMEOUT_MS: integer(10000, 100, 120000),
  /** Calls to Tixstock per minute per process, kept under Tixstock's own limit. */
  TIXSTOCK_API_RATE_PER_MINUTE: integer(240, 1, 100000),
  /** How long Tixstock keeps a hold before releasing it by itself (fractions allowed). */
  TIXSTOCK_HOLD_MINUTES: z.coerce
    .number()
    .positive()
    .max(24 * 60)
    .default(30),
  /** The release call's path template: Tixstock's docs do not show it, so it can be set. */
  TIXSTOCK_RELEASE_PATH: z.string().trim().min(1).default('tickets/release/{hold_id}/{release_quantity}'),
  /** How often the job worker compares the inventory with Tixstock's tickets/get (0 = never). */
  RECONCILE_INTERVAL: duration('24h', 60_000),
  /** Whether the periodic reconciliation (and a run that does not say) corrects what differs. */
  RECONCILE_REPAIR: flag(false),
  /** Worker threads that load ticket PDFs (checks and merges) at once; more jobs wait. */
  PDF_WORKERS: integer(2, 1, 32),
  /** V8 heap limit of each PDF worker, in MB (a worker past it is stopped and the PDF refused). */
  PDF_WORKER_MEMORY_MB: integer(256, 16, 16384),
  /** A PDF not loaded within this many ms is refused and its worker replaced (per PDF in a merge). */
  PDF_TIMEOUT_MS: integer(3000, 100, 600000),
  /** Objects and xref entries a PDF may have. */
  PDF_MAX_OBJECTS: integer(100000, 10, 100000000),
  /** MB that a PDF's object and xref streams may inflate to, all together. */
  PDF_MAX_INFLATED_MB: integer(64, 1, 4096),
});

export type Config = z.infer<typeof configSchema> & { WEBHOOK_CONCURRENCY: number };

export class ConfigError extends Error {}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]', '']);

/** Whether a URL's host is this machine (a local or embedded database). */
export function isOnThisMachine(url: string): boolean {
  const host = new URL(url).hostname;
  return LOCAL_HOSTS.has(host) || host.startsWith('127.');
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (c.WEBHOOK_MEMORY_LIMIT < c.WEBHOOK_BODY_LIMIT) {
    throw new ConfigError(
      'invalid configuration:\n  WEBHOOK_MEMORY_LIMIT: must be at least WEBHOOK_BODY_LIMIT, or the largest bodies could never be read',
    );
  }
  return { ...c, WEBHOOK_CONCURRENCY: c.WEBHOOK_CONCURRENCY ?? c.DATABASE_POOL_SIZE };
}
