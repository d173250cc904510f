// One JSON object per line on stdout (Heroku's log drain reads them). Callers pass only ids,
// types and outcomes: never tokens, passwords, database URLs or customers' personal data.
// Every line written while a request is handled carries that request's context (request_id,
// and delivery_id once a webhook has one), kept in AsyncLocalStorage.
import { AsyncLocalStorage } from 'node:async_hooks';

type Fields = Record<string, unknown>;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** LOG_LEVEL, read at each line (tests change it while running); unknown values mean info
 * (config.ts refuses them at start). */
function threshold(): number {
  return RANK[process.env.LOG_LEVEL as LogLevel] ?? RANK.info;
}

const context = new AsyncLocalStorage<Fields>();

/** Runs fn with fields added to every line it (and whatever it awaits) logs. */
export function withLogContext<T>(fields: Fields, fn: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, fn);
}

/** Adds fields to the current context, e.g. the delivery id once it is known. */
export function addLogContext(fields: Fields): void {
  const store = context.getStore();
  if (store) Object.assign(store, fields);
}

function write(level: Exclude<LogLevel, 'silent'>, msg: string, fields: Fields = {}): void {
  if (RANK[level] < threshold()) return;
  const out: Fields = { at: new Date().toISOString(), level, msg, ...context.getStore() };
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, code: (v as { code?: unknown }).code } : v;
  }
  (level === 'info' || level === 'debug' ? process.stdout : process.stderr).write(`${JSON.stringify(out)}\n`);
}

export const log = {
  debug: (msg: string, fields?: Fields) => write('debug', msg, fields),
  info: (msg: string, fields?: Fields) => write('info', msg, fields),
  warn: (msg: string, fields?: Fields) => write('warn', msg, fields),
  error: (msg: string, fields?: Fields) => write('error', msg, fields),
};
