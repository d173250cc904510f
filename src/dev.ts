// Development mode (NODE_ENV is not "production"): `npm start` with nothing set works end to end.
// Missing secrets are generated once and kept in DEV_SECRETS_FILE (mode 600), the start prints
// how to use them (a signed example webhook with openssl and curl), and GET / links the pages.
// In production none of this happens: a missing secret stays a refusal (main.ts logs which).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Config, isOnThisMachine } from './config.js';

export const SECRETS = ['TIXSTOCK_BEARER_TOKEN', 'API_TOKEN', 'SUPPORT_PASSWORD'] as const;
export type SecretName = (typeof SECRETS)[number];

/** Development mode: NODE_ENV is not production and the database is on this machine. A deployment
 * whose NODE_ENV was lost (a remote DATABASE_URL) must never generate secrets or send our sales to
 * the in-process simulator instead of Tixstock. */
export const isDevelopment = (config: Pick<Config, 'NODE_ENV' | 'DATABASE_URL'>) =>
  config.NODE_ENV !== 'production' && (config.DATABASE_URL === undefined || isOnThisMachine(config.DATABASE_URL));

/** What each secret protects, for the log line when it is missing. */
export const REFUSED_WITHOUT: Record<SecretName, string> = {
  TIXSTOCK_BEARER_TOKEN: 'webhooks are answered 503',
  API_TOKEN: '/api is answered 503',
  SUPPORT_PASSWORD: '/support is answered 503',
};

export function missingSecrets(config: Config): SecretName[] {
  return SECRETS.filter((name) => (name === 'TIXSTOCK_BEARER_TOKEN' ? config[name].length === 0 : !config[name]));
}

/** Values for the secrets missing from config: the ones kept in the file, or new ones (then
 * written back). */
export async function developmentSecrets(config: Config): Promise<Partial<Record<SecretName, string>>> {
  const file = path.resolve(config.DEV_SECRETS_FILE);
  const kept = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<SecretName, string>>) : {};
  const values: Partial<Record<SecretName, string>> = {};
  let changed = false;
  for (const name of missingSecrets(config)) {
    const value = kept[name] ?? randomBytes(24).toString('base64url');
    if (kept[name] === undefined) changed = true;
    kept[name] = value;
    values[name] = value;
  }
  if (changed) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(kept, null, 2)}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
  }
  return values;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** What is printed at start in development mode. Secrets from the file are shown (they are this
 * machine's own); secrets the developer set are referred to by name. */
export function developmentBanner(
  config: Config,
  port: number,
  fromFile: Partial<Record<SecretName, string>>,
  simulatorOrigin?: string,
): string {
  const base = `http://localhost:${port}`;
  const secret = (name: SecretName) => (fromFile[name] ? quote(fromFile[name]) : `"$${name}"`);
  const relative = path.relative(process.cwd(), path.resolve(config.DEV_SECRETS_FILE));
  const file = relative.startsWith('..') ? path.resolve(config.DEV_SECRETS_FILE) : relative;
  return `
Development mode (NODE_ENV is not "production")${Object.keys(fromFile).length ? `; secrets kept in ${file}: ${Object.keys(fromFile).join(', ')}` : ''}
  ${base}/                 links to the support page, the API description and the health checks
  ${base}/support          user support, password ${secret('SUPPORT_PASSWORD')}
  ${base}/api/openapi.json the API (curl -H "Authorization: Bearer ${fromFile.API_TOKEN ?? '$API_TOKEN'}" ${base}/api/listings)
  Tixstock: ${simulatorOrigin ? `the project's simulator in this process, ${simulatorOrigin}/_sim/state (npm run demo plays a day with it)` : config.TIXSTOCK_API_URL}

Send a signed example webhook (the fixtures hold one of each type):
  body=test/fixtures/ticket.add.json
  sig=$(openssl dgst -sha256 -hmac ${secret('TIXSTOCK_BEARER_TOKEN')} -hex < "$body" | awk '{print $2}')
  curl -s ${base}/webhooks/tixstock -H 'Content-Type: application/json' -H 'Tixstock-Version: v1' \\
    -H "X-Tixstock-Signature: $sig" --data-binary @"$body"
${
  simulatorOrigin
    ? `
A listing that Tixstock (the simulator) knows too, so that POST /api/holds can hold it:
  curl -s -X POST ${simulatorOrigin}/_sim/play/listing -H 'Content-Type: application/json' -d '{"quantity": 10}'
`
    : ''
}
`;
}

/** GET / in development mode. */
export const DEVELOPMENT_HOME = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tixstock reseller service (development)</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d2330}</style></head>
<body><h1>Tixstock reseller service</h1><p>Development mode: the secrets and a signed example webhook were printed at start.</p>
<ul>
<li><a href="/support">Support page</a> (user <code>support</code>)</li>
<li><a href="/api/openapi.json">API description</a> (OpenAPI 3.1; the API takes <code>Authorization: Bearer $API_TOKEN</code>)</li>
<li><a href="/healthz">/healthz</a>: the process is up</li>
<li><a href="/readyz">/readyz</a>: the database is reachable and migrated</li>
</ul></body></html>
`;
