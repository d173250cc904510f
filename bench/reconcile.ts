// The reconciliation case of npm run bench: 10,000 listings at the simulator (its rate limit
// off), imported by a first repair run, then 5% of them changed at the simulator and a repair
// run timed against fetching the same pages from the simulator alone (same run, same pages),
// the service's RSS watched, and then holds/releases sent to the service during a third run to
// compare their p99 with the same load without a run.
import type postgres from 'postgres';
import { listingResource } from '../src/tixstock/sim-state.js';
import { startSimulator, type Simulator } from '../src/tixstock/simulator.js';
import type { LoadJob, LoadResult } from './load.js';
import { startService, type Loader, type Server } from './processes.js';
import { mb, ms } from './report.js';
import { cpuSecondsOf, cpuSecondsOfTree } from './cpu.js';
import { peakRssOf, resetPeakRss, rssOf, sampleRss } from './rss.js';

export const RECONCILE_LISTINGS = Number(process.env.BENCH_RECONCILE_LISTINGS ?? 10_000);
const DIFFERENT = 0.05;
const API_TOKEN = 'bench-api-token';

export interface ReconcileBench {
  listings: number;
  pages: number;
  importSeconds: number;
  fetchSeconds: number;
  runSeconds: number;
  differences: number;
  rssBase: number;
  rssGrowth: number;
  holdsAlone: LoadResult;
  holdsDuringRun: LoadResult;
  runUnderLoadSeconds: number;
  /** CPU seconds of the service and of PostgreSQL during the timed run. */
  cpu: { service: number; postgres: number };
}

interface RunView {
  id: string;
  status: string;
  error: string | null;
  started_at: string;
  finished_at: string;
  listings_checked: number;
  difference_count: number;
  pages: number;
  imported: number;
}

export async function reconcileCase(p: {
  env: Record<string, string>;
  sql: postgres.Sql;
  loader: Loader;
  servers: Server[];
  job: (j: Partial<LoadJob>) => LoadJob;
  say: (s: string) => void;
  pgPid?: number;
}): Promise<ReconcileBench> {
  const { sql, say } = p;
  const sim = await startSimulator({ token: p.env.TIXSTOCK_BEARER_TOKEN!, rateLimitPerMinute: null });
  try {
    const service = await startService(
      {
        ...p.env,
        API_TOKEN,
        TIXSTOCK_API_URL: sim.url,
        TIXSTOCK_API_RATE_PER_MINUTE: '100000',
        RECONCILE_INTERVAL: '0',
      },
      'reconcile service',
    );
    p.servers.push(service);
    const [seq] = await sql<[{ last: string }]>`select (last_value + 1000)::text as last from listing_id_seq`;
    const first = BigInt(seq.last);
    const ids: string[] = [];
    for (let i = 0; i < RECONCILE_LISTINGS; i++) {
      const id = String(first + BigInt(i));
      ids.push(id);
      const quantity = i < 50 ? 100_000 : 10; // the first 50 take the holds of the p99 case
      const { id: _none, ...resource } = listingResource(quantity);
      sim.putListing({ id, quantity, resource });
    }
    const start = () => post(service.url, { repair: true });

    const imported = await finished(service.url, await start());
    if (imported.status !== 'done' || imported.imported !== RECONCILE_LISTINGS)
      throw new Error(`import run: ${JSON.stringify(imported)}`);
    const importSeconds = seconds(imported);
    say(`reconcile: imported ${imported.imported} listings in ${importSeconds.toFixed(2)} s (${imported.pages} pages)`);

    // 5% different at Tixstock (lost webhooks), never the 50 that the holds use.
    const change = (round: number) => {
      for (let i = 50 + round; i < ids.length; i += Math.round(1 / DIFFERENT)) {
        const l = sim.listing(ids[i]!)!;
        sim.putListing({ key: l.key, id: l.id, quantity: l.quantity === 10 ? 7 : 10 });
      }
    };

    change(0);
    await vacuum(sql);
    const fetchSeconds = await fetchAll(sim, p.env.TIXSTOCK_BEARER_TOKEN!);
    const rssBase = rssOf(service.pid);
    resetPeakRss(service.pid);
    const sampler = sampleRss(service.pid, 100);
    const cpuBefore = { service: cpuSecondsOf(service.pid), postgres: p.pgPid ? cpuSecondsOfTree(p.pgPid) : NaN };
    const run = await finished(service.url, await start());
    const cpu = {
      service: cpuSecondsOf(service.pid) - cpuBefore.service,
      postgres: (p.pgPid ? cpuSecondsOfTree(p.pgPid) : NaN) - cpuBefore.postgres,
    };
    const samples = sampler.stop();
    const rssPeak = Math.max(peakRssOf(service.pid), ...samples.map((s) => s.rss));
    if (run.status !== 'done') throw new Error(`timed run: ${JSON.stringify(run)}`);
    const runSeconds = seconds(run);
    say(
      `reconcile: ${run.listings_checked} listings, ${run.difference_count} differences in ${runSeconds.toFixed(2)} s; the same pages alone ${fetchSeconds.toFixed(2)} s; RSS ${mb(rssBase)} -> peak ${mb(rssPeak)} MB; CPU s service ${cpu.service.toFixed(2)}, PostgreSQL ${cpu.postgres.toFixed(2)}`,
    );

    // Holds/releases on 50 of the listings, alone and during a run, for as long as a run takes.
    const duration = Math.max(5, Math.ceil(runSeconds * 1.5));
    const holds = p.job({ workload: 'holds', connections: 8, duration, urls: [service.url], listingIds: ids.slice(0, 50) });
    await p.loader.run({ ...holds, duration: 3 }); // warm
    await vacuum(sql);
    const holdsAlone = await p.loader.run(holds);
    change(1);
    await vacuum(sql);
    const during = start();
    const holdsDuringRun = await p.loader.run(holds);
    const underLoad = await finished(service.url, await during);
    say(
      `reconcile: holds p99 ${ms(holdsAlone.p99)} ms alone, ${ms(holdsDuringRun.p99)} ms during a run (${seconds(underLoad).toFixed(2)} s under that load)`,
    );
    await service.stop();
    p.servers.splice(p.servers.indexOf(service), 1);
    return {
      listings: RECONCILE_LISTINGS,
      pages: run.pages,
      importSeconds,
      fetchSeconds,
      runSeconds,
      differences: run.difference_count,
      rssBase,
      rssGrowth: Math.max(0, rssPeak - rssBase),
      holdsAlone,
      holdsDuringRun,
      runUnderLoadSeconds: seconds(underLoad),
      cpu,
    };
  } finally {
    await sim.close();
  }
}

const seconds = (r: RunView) => (new Date(r.finished_at).getTime() - new Date(r.started_at).getTime()) / 1000;

async function post(url: string, body: unknown): Promise<string> {
  const res = await fetch(`${url}/api/reconciliations`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${API_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const run = (await res.json()) as RunView;
  if (res.status !== 202) throw new Error(`POST /api/reconciliations: ${res.status} ${JSON.stringify(run)}`);
  return run.id;
}

async function finished(url: string, id: string): Promise<RunView> {
  for (;;) {
    const res = await fetch(`${url}/api/reconciliations/${id}`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
    const run = (await res.json()) as RunView;
    if (run.status !== 'running') return run;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pages a run reads, fetched and parsed one after the other, nothing else done with them. */
async function fetchAll(sim: Simulator, token: string): Promise<number> {
  const t0 = performance.now();
  for (let page = 1; ; page++) {
    const res = await fetch(`${sim.url}/tickets/get?per_page=50&page=${page}`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    });
    const body = (await res.json()) as { data: unknown[]; links: { next: string | null } };
    if (!body.links.next || body.data.length < 50) break;
  }
  return (performance.now() - t0) / 1000;
}

async function vacuum(sql: postgres.Sql): Promise<void> {
  await sql`vacuum listings`;
}
