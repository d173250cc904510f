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

const integer = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

const configSchema = z.object({
  /** "production" on Heroku (its Node.js buildpack sets it); anything else is development mode. */
  NODE_ENV: z.string().trim().default('development'),
  /** Development mode only: where missing secrets are generated and kept. */
  DEV_SECRETS_FILE: z.string().trim().min(1).default('.data/dev-secrets.json'),
  PORT: integer(3000, 0, 65535),
  DATABASE_URL: optionalText,
  /** Connections this process opens. Heroku's smallest plans allow 20 across all dynos. */
  DATABASE_POOL_SIZE: integer(8, 1, 500),
  /** Port of the embedded PostgreSQL used when DATABASE_URL is unset. */
  EMBEDDED_POSTGRES_PORT: integer(54329, 1, 65535),
  TIXSTOCK_BEARER_TOKEN: optionalText.transform((s) =>
    (s ?? '').split(',').map((t) => t.trim()).filter((t) => t !== ''),
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
  WEBHOOK_BODY_LIMIT: z
    .string()
    .trim()
    .default('50mb')
    .transform((s, ctx) => {
      const n = bytes.parse(s);
      if (n === null || !Number.isFinite(n) || n <= 0) {
        ctx.addIssue({ code: 'custom', message: 'must be a size such as 50mb or 1048576' });
        return z.NEVER;
      }
      return n;
    }),
  /** Webhooks one process applies at once; defaults to the pool size. */
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(500).optional(),
  /** Large webhooks (bodies of 4 MB and more: ticket PDFs) applied at once, apart from the rest. */
  WEBHOOK_LARGE_CONCURRENCY: integer(1, 1, 100),
  /** Webhooks allowed to wait for a slot; beyond it the receiver answers 503 at once. */
  WEBHOOK_BACKLOG: integer(128, 0, 100000),
  /** A webhook not committed within this many ms is abandoned and answered 503. */
  WEBHOOK_DEADLINE_MS: integer(5000, 100, 120000),
  /** Lines below this level are not written (log.ts reads the variable itself). */
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  /** Base URL of Tixstock's reseller API (the simulator's URL in development and tests). */
  TIXSTOCK_API_URL: z.string().trim().url('must be a URL such as https://api.tixstock.com/v1').default('https://api.tixstock.com/v1'),
  /** How long one call to Tixstock may take before its outcome is unknown. */
  TIXSTOCK_API_TIMEOUT_MS: integer(10000, 100, 120000),
  /** Calls to Tixstock per minute per process, kept under Tixstock's own limit. */
  TIXSTOCK_API_RATE_PER_MINUTE: integer(240, 1, 100000),
  /** How long Tixstock keeps a hold before releasing it by itself (fractions allowed). */
  TIXSTOCK_HOLD_MINUTES: z.coerce.number().positive().max(24 * 60).default(30),
  /** The release call's path template: Tixstock's docs do not show it (DESIGN 2b). */
  TIXSTOCK_RELEASE_PATH: z.string().trim().min(1).default('tickets/release/{hold_id}/{release_quantity}'),
});

export type Config = z.infer<typeof configSchema> & { WEBHOOK_CONCURRENCY: number };

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  return { ...c, WEBHOOK_CONCURRENCY: c.WEBHOOK_CONCURRENCY ?? c.DATABASE_POOL_SIZE };
}
