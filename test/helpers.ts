// Shared test helpers: the app on a real database, signed requests, fixtures.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { createApp } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import { connect, type Sql } from '../src/db/connect.js';
import { sign } from '../src/webhooks/signature.js';

export { freePort } from './free-port.js';

export const TOKEN = 'test-bearer-token';
export const API_TOKEN = 'test-api-token';
export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

export function databaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is unset: run the tests with mocha (test/setup.ts starts the database)');
  return url;
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl(),
    TIXSTOCK_BEARER_TOKEN: TOKEN,
    API_TOKEN,
    SUPPORT_PASSWORD: 'test-support-password',
    ...env,
  });
}

let shared: Sql | undefined;
/** One pool for the whole run (closing and reopening per file costs connections). */
export function testSql(): Sql {
  shared ??= connect(databaseUrl(), { max: 20 });
  return shared;
}

/** Closes the shared pool (the root after-all hook of setup.ts), so the run exits by itself. */
export async function closeTestSql(): Promise<void> {
  const sql = shared;
  shared = undefined;
  await sql?.end({ timeout: 5 });
}

export type App = ReturnType<typeof createApp>;

/** The app on the test database, as supertest's agent target. Call it in a before() hook:
 * the database is started by the global setup, after test files are loaded. */
export function testApp(env: Record<string, string> = {}) {
  const config = testConfig(env);
  return { app: createApp({ sql: testSql(), config }), config, sql: testSql() };
}

/** Empties every table but the migrations record. Sequences keep counting, so ids from one
 * test never reappear in another. */
export async function resetDatabase(sql: Sql = testSql()): Promise<void> {
  const tables = await sql<{ tablename: string }[]>`
    select tablename from pg_tables where schemaname = 'public' and tablename <> 'schema_migrations'`;
  if (tables.length) await sql.unsafe(`truncate ${tables.map((t) => `"${t.tablename}"`).join(', ')} cascade`);
}

/** A fixture's exact bytes. */
export function fixture(name: string): Buffer {
  return readFileSync(path.join(FIXTURES, name));
}

/** A fixture with the placeholder listing id 300001 replaced by a real one (bytes otherwise
 * untouched, so PHP-style escapes survive). */
export function fixtureFor(name: string, listingId: string): Buffer {
  return Buffer.from(fixture(name).toString('latin1').replaceAll('"300001"', JSON.stringify(listingId)), 'latin1');
}

/** A webhook body written like Tixstock's PHP json_encode: "/" escaped, non-ASCII as \uXXXX. */
export function phpJson(value: unknown): Buffer {
  const text = JSON.stringify(value)
    .replaceAll('/', '\\/')
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text);
}

export function webhook(type: string, data: Record<string, unknown>): Buffer {
  return phpJson({ data, meta: { type } });
}

export interface SendOptions {
  token?: string;
  signature?: string | null;
  version?: string | null;
  path?: string;
  contentType?: string | null;
}

/** POSTs a body signed over its exact bytes. */
export function sendWebhook(app: Parameters<typeof request>[0], body: Buffer | string, opts: SendOptions = {}) {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  let req = request(app)
    .post(opts.path ?? '/webhooks/tixstock')
    .set('User-Agent', 'Tixstock API');
  if (opts.contentType !== null) req = req.set('Content-Type', opts.contentType ?? 'application/json');
  if (opts.version !== null) req = req.set('Tixstock-Version', opts.version ?? 'v1');
  if (opts.signature !== null) req = req.set('X-Tixstock-Signature', opts.signature ?? sign(buf, opts.token ?? TOKEN));
  // superagent would JSON-encode a Buffer ({"type":"Buffer",...}): send the bytes as they are.
  return req.serialize((b: Buffer) => b as unknown as string).send(buf);
}

export function api(app: Parameters<typeof request>[0]) {
  const auth = (r: request.Test) => r.set('Authorization', `Bearer ${API_TOKEN}`);
  return {
    get: (url: string) => auth(request(app).get(url)),
    post: (url: string) => auth(request(app).post(url)),
    put: (url: string) => auth(request(app).put(url)),
  };
}

let addCount = 0;
/** Adds the example listing and returns its id. Each body carries a distinct extra field:
 * an identical ticket.add within 24 h would be (rightly) answered as a retry of the first. */
export async function addListing(app: Parameters<typeof request>[0], overrides: Record<string, unknown> = {}): Promise<string> {
  const base = JSON.parse(fixture('ticket.add.json').toString('utf8'));
  const body = overrides.raw
    ? (overrides.raw as Buffer)
    : webhook('ticket.add', { ...base.data, test_marker: `${process.pid}-${++addCount}`, ...overrides });
  const res = await sendWebhook(app, body);
  if (res.status !== 200 || res.body.success !== true)
    throw new Error(`ticket.add failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.listing_id as string;
}

export function withQuantity(q: number) {
  return { number_of_tickets_for_sale: { quantity_available: q, quantity_sold: 0, display_quantity: q, split_quantity: 0 } };
}

/** What fn writes to stdout and stderr (the log lines), with LOG_LEVEL set to level meanwhile. */
export async function captureOutput(fn: () => Promise<unknown>, level = 'info'): Promise<string> {
  const saved = { out: process.stdout.write, err: process.stderr.write, level: process.env.LOG_LEVEL };
  let text = '';
  const grab = (chunk: unknown) => {
    text += String(chunk);
    return true;
  };
  process.env.LOG_LEVEL = level;
  process.stdout.write = grab as typeof process.stdout.write;
  process.stderr.write = grab as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.env.LOG_LEVEL = saved.level;
  }
  return text;
}

/** The JSON log lines of some output. */
export const logLines = (output: string): Record<string, unknown>[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
