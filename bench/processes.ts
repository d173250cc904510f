// The processes of a bench run: the compiled service (one or two), the ceiling server and the
// load generator, all on 127.0.0.1, all stopped by the run (and on Ctrl-C).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/free-port.js';
import type { LoadJob, LoadResult } from './load.js';

export { freePort };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(ROOT, 'bench');

const children = new Set<ChildProcess>();

export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function track(proc: ChildProcess, name: string): { output: () => string; exited: Promise<void> } {
  children.add(proc);
  let output = '';
  proc.stdout?.on('data', (c) => (output = (output + c).slice(-4000)));
  proc.stderr?.on('data', (c) => (output = (output + c).slice(-4000)));
  const exited = new Promise<void>((resolve) =>
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      if (code && !stopping.has(proc)) process.stderr.write(`${name} exited with ${code ?? signal}:\n${output}\n`);
      resolve();
    }),
  );
  return { output: () => output, exited };
}

const stopping = new Set<ChildProcess>();
async function stopProcess(proc: ChildProcess, exited: Promise<void>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  stopping.add(proc);
  proc.kill('SIGTERM');
  const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}

async function waitReady(url: string, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${url} exited with ${proc.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not become ready:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The service as it runs in production: `node dist/src/main.js`, logs off. */
export async function startService(env: Record<string, string>, name = 'service'): Promise<Server> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_NODE_OPTIONS?.split(' ').filter(Boolean) ?? []),
      process.env.BENCH_SERVICE_ENTRY ?? path.join(ROOT, 'dist/src/main.js'),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'silent', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const { output, exited } = track(proc, name);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, proc, output);
  return { url, pid: proc.pid!, stop: () => stopProcess(proc, exited) };
}

/** bench/ceiling.ts, or another server of the same contract (bench/floor.ts). */
export async function startCeiling(env: Record<string, string>, script = 'ceiling.ts'): Promise<Server> {
  const port = await freePort();
  const proc = fork(path.join(BENCH, script), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const { output, exited } = track(proc, script);
  await new Promise<void>((resolve, reject) => {
    proc.once('message', () => resolve());
    void exited.then(() => reject(new Error(`ceiling server exited:\n${output()}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: proc.pid!, stop: () => stopProcess(proc, exited) };
}

export interface Loader {
  pid: number;
  run(job: LoadJob): Promise<LoadResult>;
  stop(): Promise<void>;
}

export async function startLoader(): Promise<Loader> {
  const proc = fork(path.join(BENCH, 'load.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { exited } = track(proc, 'load generator');
  let nextId = 0;
  const waiting = new Map<number, { resolve: (r: LoadResult) => void; reject: (e: Error) => void }>();
  proc.on('message', (msg: { id: number; result?: LoadResult; error?: string }) => {
    const w = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.error !== undefined) w?.reject(new Error(`load generator: ${msg.error}`));
    else w?.resolve(msg.result!);
  });
  void exited.then(() => {
    for (const w of waiting.values()) w.reject(new Error('load generator exited'));
  });
  return {
    pid: proc.pid!,
    run: (job) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        proc.send({ id, job });
      }),
    stop: () => stopProcess(proc, exited),
  };
}

/** Last resort on Ctrl-C or a crash: the bench leaves no process behind. */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}
