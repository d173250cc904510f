// Real server processes for tests that need several processes, signals or crashes.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_TOKEN, databaseUrl, freePort, TOKEN } from './helpers.js';
import { sign } from '../src/webhooks/signature.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  let output = '';
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      NODE_ENV: 'production', // development mode is tested on its own (dev.test.ts)
      PORT: String(port),
      DATABASE_URL: databaseUrl(),
      TIXSTOCK_BEARER_TOKEN: TOKEN,
      API_TOKEN,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (c) => (output += c));
  proc.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000; // generous: CI machines can be busy
  let last = '';
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) break;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String(err); // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not become ready (last /readyz: ${last}):\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    proc,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** POSTs a signed webhook with fetch (real sockets, real concurrency). */
export async function postWebhook(url: string, body: Buffer, extra: Record<string, string> = {}) {
  const res = await fetch(`${url}/webhooks/tixstock`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Tixstock-Version': 'v1',
      'X-Tixstock-Signature': sign(body, TOKEN),
      ...extra,
    },
    body: new Uint8Array(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: kept in text
  }
  return { status: res.status, body: json, text, retryAfter: res.headers.get('retry-after') };
}
