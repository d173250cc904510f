// The sales case of the bench: hold then release through the service's /api/holds (which calls
// the simulator), against the same hold then release sent straight to the simulator in the same
// run, taking turns in rounds. Reported as the service's added latency per call (its percentile
// minus the direct one). Run by `BENCH_ONLY=sales npm run bench`, or alone:
//   node --import tsx bench/sales.ts   (after npm run build)
import { fork } from 'node:child_process';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { freePort, killAll, ROOT, startService, type Server } from './processes.js';
import { cpuSecondsOf } from './cpu.js';
import { ms, targetsTable, type Target } from './report.js';

const TOKEN = 'bench-bearer-token';
const API_TOKEN = 'bench-api-token';
const LISTINGS = 50;
const CONNECTIONS = (process.env.BENCH_SALES_CONNECTIONS ?? '8,64').split(',').map(Number);

interface Samples {
  latencies: number[];
  errors: number;
  calls: number;
  seconds: number;
}

const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;

async function startSim(): Promise<{ url: string; origin: string; stop: () => void }> {
  const proc = fork(path.join(ROOT, 'bench/sim-server.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TIXSTOCK_BEARER_TOKEN: TOKEN },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const info = await new Promise<{ url: string; origin: string }>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as { url: string; origin: string }));
    proc.once('exit', () => reject(new Error('simulator exited')));
  });
  return { ...info, stop: () => proc.kill('SIGTERM') };
}

/** `connections` loops, each: hold 1 on a listing, then release it, until `seconds` pass. */
async function run(
  connections: number,
  seconds: number,
  listingIds: string[],
  hold: (listingId: string) => Promise<string | undefined>,
  release: (holdId: string) => Promise<boolean>,
): Promise<Samples> {
  const s: Samples = { latencies: [], errors: 0, calls: 0, seconds };
  const end = performance.now() + seconds * 1000;
  let k = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const listing = listingIds[k++ % listingIds.length]!;
        let t = performance.now();
        const holdId = await hold(listing).catch(() => undefined);
        s.latencies.push(performance.now() - t);
        s.calls++;
        if (!holdId) {
          s.errors++;
          continue;
        }
        t = performance.now();
        const ok = await release(holdId).catch(() => false);
        s.latencies.push(performance.now() - t);
        s.calls++;
        if (!ok) s.errors++;
      }
    }),
  );
  s.latencies.sort((a, b) => a - b);
  return s;
}

export async function salesBench(say: (line: string) => void, seconds: number, rounds: number): Promise<string> {
  const started = new Date();
  const loadBefore = os.loadavg();
  const dataDir = path.join(ROOT, `.data/bench-sales-${process.pid}`);
  let url = process.env.DATABASE_URL;
  let stopDb = async () => {};
  if (!url) {
    await rm(dataDir, { recursive: true, force: true });
    const pg = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: say });
    url = pg.url;
    stopDb = async () => {
      await pg.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }
  const sim = await startSim();
  let service: Server | undefined;
  try {
    service = await startService(
      {
        DATABASE_URL: url,
        TIXSTOCK_BEARER_TOKEN: TOKEN,
        API_TOKEN,
        TIXSTOCK_API_URL: sim.url,
        TIXSTOCK_API_RATE_PER_MINUTE: '100000',
        DATABASE_POOL_SIZE: process.env.DATABASE_POOL_SIZE ?? '8',
      },
      'service (sales)',
    );
    const json = { 'Content-Type': 'application/json' };
    const listingIds: string[] = [];
    for (let i = 0; i < LISTINGS; i++) {
      const r = await fetch(`${sim.origin}/_sim/play/listing`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ quantity: 100_000, overrides: { bench: i }, serviceUrl: service.url }),
      });
      const l = (await r.json()) as { id?: string };
      if (!l.id) throw new Error(`could not add a listing: ${JSON.stringify(l)}`);
      listingIds.push(l.id);
    }
    const api = { ...json, Authorization: `Bearer ${API_TOKEN}` };
    const tix = { ...json, Authorization: `Bearer ${TOKEN}` };
    const viaService = {
      hold: async (listingId: string) => {
        const r = await fetch(`${service!.url}/api/holds`, {
          method: 'POST',
          headers: api,
          body: JSON.stringify({ listing_id: listingId, quantity: 1 }),
        });
        const b = (await r.json()) as { id?: string };
        return r.status === 201 ? b.id : undefined;
      },
      release: async (holdId: string) => {
        const r = await fetch(`${service!.url}/api/holds/${holdId}/release`, { method: 'POST', headers: api, body: '{}' });
        await r.arrayBuffer();
        return r.status === 200;
      },
    };
    const direct = {
      hold: async (listingId: string) => {
        const r = await fetch(`${sim.url}/tickets/hold/${listingId}`, {
          method: 'POST',
          headers: tix,
          body: JSON.stringify({ quantity: 1 }),
        });
        const b = (await r.json()) as { meta?: { hold_id?: string } };
        return r.ok ? b.meta?.hold_id : undefined;
      },
      release: async (holdId: string) => {
        const r = await fetch(`${sim.url}/tickets/release/${holdId}/1`, {
          method: 'POST',
          headers: tix,
          body: JSON.stringify({ hold_id: holdId, release_quantity: 1 }),
        });
        await r.arrayBuffer();
        return r.ok;
      },
    };
    // Warm both (JIT, pools, prepared statements).
    await run(8, 2, listingIds, direct.hold, direct.release);
    await run(8, 3, listingIds, viaService.hold, viaService.release);

    const rows: string[] = [];
    const targets: Target[] = [];
    for (const connections of CONNECTIONS) {
      const d: number[] = [],
        sv: number[] = [];
      let sCalls = 0,
        dErr = 0,
        sErr = 0,
        sCpu = 0;
      for (let r = 0; r < rounds; r++) {
        const a = await run(connections, seconds / rounds, listingIds, direct.hold, direct.release);
        d.push(...a.latencies);
        dErr += a.errors;
        const cpu0 = cpuSecondsOf(service.pid);
        const b = await run(connections, seconds / rounds, listingIds, viaService.hold, viaService.release);
        sCpu += cpuSecondsOf(service.pid) - cpu0;
        sv.push(...b.latencies);
        sCalls += b.calls;
        sErr += b.errors;
      }
      d.sort((x, y) => x - y);
      sv.sort((x, y) => x - y);
      const added = (p: number) => pct(sv, p) - pct(d, p);
      say(
        `sales x${connections}: service p50 ${ms(pct(sv, 50))} p99 ${ms(pct(sv, 99))} ms, direct p50 ${ms(pct(d, 50))} p99 ${ms(pct(d, 99))} ms, added p50 ${ms(added(50))} p99 ${ms(added(99))}, errors ${sErr}, service CPU ${ms((sCpu * 1000) / sCalls)} ms/call`,
      );
      rows.push(
        `| hold+release via /api/holds | ${connections} | ${(sCalls / seconds).toFixed(0)} | ${ms(pct(sv, 50))} | ${ms(pct(sv, 99))} | ${ms(pct(d, 50))} | ${ms(pct(d, 99))} | ${ms(added(50))} | ${ms(added(99))} | ${ms((sCpu * 1000) / sCalls)} | ${sCalls} | ${sErr} | ${dErr} |`,
      );
      if (connections === 8) {
        targets.push({
          name: 'sales: p50 added <= 5 ms at 8 connections',
          pass: added(50) <= 5,
          measured: `${ms(added(50))} ms`,
        });
        targets.push({
          name: 'sales: p99 added <= 20 ms at 8 connections',
          pass: added(99) <= 20,
          measured: `${ms(added(99))} ms`,
        });
      }
      targets.push({
        name: `sales: no errors at ${connections} connections`,
        pass: sErr === 0,
        measured: `${sErr} errors in ${sCalls} calls`,
      });
    }
    const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    return [
      `Run ${started.toISOString()} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, load average before ${load(loadBefore)}, after ${load(os.loadavg())};`,
      `${seconds} s per case in ${rounds} alternating rounds, DATABASE_POOL_SIZE=${process.env.DATABASE_POOL_SIZE ?? '8'}, ${LISTINGS} listings, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}.`,
      '',
      '| case | conns | calls/s | p50 ms | p99 ms | direct p50 ms | direct p99 ms | added p50 ms | added p99 ms | service CPU ms/call | calls | errors | direct errors |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      targetsTable(targets),
    ].join('\n');
  } finally {
    await service?.stop();
    sim.stop();
    await stopDb();
  }
}

if (process.argv[1]?.endsWith('bench/sales.ts')) {
  const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  process.on('SIGINT', () => {
    killAll();
    process.exit(130);
  });
  salesBench(say, Number(process.env.BENCH_SECONDS ?? 10), Number(process.env.BENCH_ROUNDS ?? 3)).then(
    (report) => process.stdout.write(`${report}\n`),
    (err) => {
      killAll();
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
