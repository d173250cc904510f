// npm run bench: the compiled service against a real PostgreSQL, driven by signed webhooks from a
// separate load-generator process, side by side with the ceiling (bench/ceiling.ts) on the same
// database. Prints a markdown table and the targets, and leaves nothing running.
//
//   DATABASE_URL          use this PostgreSQL (a scratch database: the bench writes to it)
//                         instead of a fresh embedded one under .data/bench-<pid>
//   BENCH_SECONDS         length of each timed case (default 10)
//   BENCH_STABILITY_SECONDS  length of the mix run whose RSS is watched (default 60)
//   BENCH_ONLY            comma-separated subset: holds,mix,fulfilment,scale,memory,uploads,reconcile (or large:
//                         only the 20 MB fulfilment one at a time), sales (bench/sales.ts: /api/holds
//                         against the simulator; not in the default set)
//   BENCH_RECONCILE_LISTINGS  listings of the reconciliation case (default 10000)
//   BENCH_NODE_OPTIONS    extra node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=.data/prof"
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { sign } from '../src/webhooks/signature.js';
import type { LoadJob, LoadResult } from './load.js';
import { freePort, killAll, ROOT, startCeiling, startLoader, startService, type Server } from './processes.js';
import { errorsOf, mb, ms, ratioOf, rps, table, targetsTable, type Case, type CpuUse, type Target } from './report.js';
import { cpuSecondsOf, cpuSecondsOfTree, postmasterPid } from './cpu.js';
import { reconcileCase, type ReconcileBench } from './reconcile.js';
import { peakRssOf, resetPeakRss, rssOf, sampleRss } from './rss.js';
import { salesBench } from './sales.js';
import { upload, type UploadAnswer } from './uploads.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const STABILITY_SECONDS = Number(process.env.BENCH_STABILITY_SECONDS ?? 60);
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? 'holds,mix,fulfilment,scale,memory,uploads,reconcile').split(',').map((s) => s.trim()),
);
const POOL = process.env.DATABASE_POOL_SIZE ?? '8';
const TOKEN = 'bench-bearer-token';
const LISTINGS = 50;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = [8, 64];
const MB = 1024 * 1024;

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
const runTag = `${process.pid}-${Date.now().toString(36)}`;

async function main() {
  if (ONLY.has('sales')) {
    // Its own database, service and simulator: see bench/sales.ts.
    process.stdout.write(`${await salesBench(say, SECONDS, ROUNDS)}\n`);
    ONLY.delete('sales');
    if (ONLY.size === 0) return;
  }
  const started = new Date();
  const loadBefore = os.loadavg();
  const dataDir = path.join(ROOT, `.data/bench-${process.pid}`);
  let stopDb = async () => {};
  let url = process.env.DATABASE_URL;
  if (!url) {
    await rm(dataDir, { recursive: true, force: true });
    const pg = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: say });
    url = pg.url;
    stopDb = async () => {
      await pg.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
    say(`embedded PostgreSQL in ${path.relative(ROOT, dataDir)}`);
  } else {
    say('using DATABASE_URL (it gets bench rows: use a scratch database)');
  }
  const env = { DATABASE_URL: url, DATABASE_POOL_SIZE: POOL, TIXSTOCK_BEARER_TOKEN: TOKEN };
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const servers: Server[] = [];
  let loader: Awaited<ReturnType<typeof startLoader>> | undefined;
  try {
    const service = await startService(env);
    servers.push(service);
    const ceiling = await startCeiling(env);
    servers.push(ceiling);
    loader = await startLoader();
    const pgPid = postmasterPid(dataDir);
    /** Runs a job and measures the CPU the server, PostgreSQL and the loader used meanwhile. */
    const runMeasured = async (j: LoadJob, serverPid: number): Promise<{ result: LoadResult; cpu: CpuUse }> => {
      const read = () => ({
        server: cpuSecondsOf(serverPid),
        postgres: pgPid ? cpuSecondsOfTree(pgPid) : NaN,
        loader: cpuSecondsOf(loader!.pid),
      });
      const before = read();
      const t0 = performance.now();
      const result = await loader!.run(j);
      const wall = (performance.now() - t0) / 1000;
      const after = read();
      return {
        result,
        cpu: {
          server: (after.server - before.server) / wall,
          postgres: (after.postgres - before.postgres) / wall,
          loader: (after.loader - before.loader) / wall,
        },
      };
    };
    say(`service ${service.url} (pid ${service.pid}), ceiling ${ceiling.url} (pid ${ceiling.pid}), pool ${POOL}`);

    const listingIds = await addListings(service.url);
    const job = (over: Partial<LoadJob> & Pick<LoadJob, 'workload' | 'connections'>): LoadJob => ({
      urls: [],
      token: TOKEN,
      listingIds,
      timeoutSeconds: 30,
      runTag: `${runTag}-${Math.random().toString(36).slice(2, 8)}`,
      ...over,
    });

    /** One case: the ceiling first, then the service, same job, peak RSS of the service. */
    /** One case: the ceiling and the service take turns in ROUNDS short runs of the same job
     * (so a burst of other load on this shared machine hits both alike), then the totals. */
    const measure = async (
      workload: string,
      j: LoadJob,
      withCeiling = true,
      bodyBytes?: number,
      subject: Server = service,
      beside?: { workload: string; server: Server; cases: Case[]; roundRatios: number[] },
    ): Promise<Case> => {
      const rounds = j.duration !== undefined ? ROUNDS : 1;
      const part = { ...j, duration: j.duration === undefined ? undefined : j.duration / rounds };
      const ceilingRuns: { result: LoadResult; cpu: CpuUse }[] = [];
      const serviceRuns: { result: LoadResult; cpu: CpuUse }[] = [];
      const besideRuns: { result: LoadResult; cpu: CpuUse }[] = [];
      let walSynced = 0;
      const [{ max: watermark }] = await sql<[{ max: string }]>`select coalesce(max(id), 0)::text as max from deliveries`;
      const baseRss = rssOf(subject.pid);
      let peakRss = 0;
      for (let r = 0; r < rounds; r++) {
        await databaseIdle(sql);
        if (withCeiling) ceilingRuns.push(await runMeasured({ ...part, urls: [ceiling.url] }, ceiling.pid));
        if (beside) {
          await databaseIdle(sql);
          besideRuns.push(await runMeasured({ ...part, urls: [beside.server.url] }, beside.server.pid));
        }
        await databaseIdle(sql);
        resetPeakRss(subject.pid);
        const walBefore = await walSyncs(sql);
        serviceRuns.push(await runMeasured({ ...part, urls: [subject.url] }, subject.pid));
        walSynced += (await walSyncs(sql)) - walBefore;
        peakRss = Math.max(peakRss, peakRssOf(subject.pid));
        if (beside) beside.roundRatios.push(serviceRuns.at(-1)!.result.rps / besideRuns.at(-1)!.result.rps);
      }
      if (beside) {
        const b = combineRuns(besideRuns);
        const ceilingOfRounds = withCeiling ? combineRuns(ceilingRuns) : undefined;
        beside.cases.push({
          workload: beside.workload,
          connections: j.connections,
          service: b.result,
          ceiling: ceilingOfRounds?.result,
          peakRss: 0,
          baseRss: 0,
          outcomes: {},
          serviceCpu: b.cpu,
          ceilingCpu: ceilingOfRounds?.cpu,
        });
        say(
          `${beside.workload} x${j.connections}: ${rps(b.result.rps)} req/s, p99 ${ms(b.result.p99)} ms; service / it by round ${beside.roundRatios.map((r) => r.toFixed(2)).join(', ')}`,
        );
      }
      // How many webhooks each WAL flush committed: PostgreSQL's own group commit.
      say(
        `${workload} x${j.connections}: ${(serviceRuns.reduce((n, r) => n + r.result.requests, 0) / Math.max(1, walSynced)).toFixed(2)} requests per WAL sync (pg_stat_wal)`,
      );
      const ceilingRun = withCeiling ? combineRuns(ceilingRuns) : undefined;
      const { result, cpu } = combineRuns(serviceRuns);
      const ceilingResult = ceilingRun?.result;
      const outcomes = await outcomesSince(sql, watermark);
      const c: Case = {
        workload,
        connections: j.connections,
        service: result,
        ceiling: ceilingResult,
        peakRss,
        baseRss,
        outcomes,
        bodyBytes,
        serviceCpu: cpu,
        ceilingCpu: ceilingRun?.cpu,
      };
      say(
        `${workload} x${j.connections}: ${rps(result.rps)} req/s${ceilingResult ? ` (ceiling ${rps(ceilingResult.rps)}, ratio ${ratioOf(c)!.toFixed(2)})` : ''}, p99 ${ms(result.p99)} ms, errors ${errorsOf(result)}`,
      );
      return c;
    };

    // Warm both (JIT, pools, prepared statements) before anything is recorded.
    await loader.run(job({ workload: 'holds', connections: 8, duration: 3, urls: [ceiling.url] }));
    await loader.run(job({ workload: 'holds', connections: 8, duration: 3, urls: [service.url] }));

    const cases: Case[] = [];
    const targets: Target[] = [];

    let floor8: Case | undefined;
    const floorRatios: number[] = [];
    if (ONLY.has('holds')) {
      // The floor of our design (bench/floor.ts): what a hold costs with nothing but what the
      // guarantees need, in one autocommit statement on a bare server. At 8 connections it takes
      // its turn in every round with the ceiling and the service, so its ratio is of the same run.
      const floor = await startCeiling(env, 'floor.ts');
      servers.push(floor);
      await loader.run(job({ workload: 'holds', connections: 8, duration: 3, urls: [floor.url] }));
      const floorCases: Case[] = [];
      for (const connections of CONNECTIONS) {
        const beside =
          connections === 8
            ? { workload: '(a) floor (bench/floor.ts)', server: floor, cases: floorCases, roundRatios: floorRatios }
            : undefined;
        cases.push(
          await measure(
            '(a) hold/release',
            job({ workload: 'holds', connections, duration: SECONDS }),
            true,
            undefined,
            service,
            beside,
          ),
        );
      }
      floor8 = floorCases[0];
      cases.push(...floorCases);
      await floor.stop();
      servers.splice(servers.indexOf(floor), 1);
    }

    let stability: { base: number; end: number; max: number; growth: number } | undefined;
    if (ONLY.has('mix')) {
      // The RSS watch: the mix for STABILITY_SECONDS at 8 connections, sampled every second.
      await databaseIdle(sql);
      const ceilingMix = await runMeasured(
        job({ workload: 'mix', connections: 8, duration: SECONDS, urls: [ceiling.url] }),
        ceiling.pid,
      );
      const [{ max: watermark }] = await sql<[{ max: string }]>`select coalesce(max(id), 0)::text as max from deliveries`;
      await databaseIdle(sql);
      const baseRss = rssOf(service.pid);
      resetPeakRss(service.pid);
      const sampler = sampleRss(service.pid, 1000);
      const { result, cpu } = await runMeasured(
        job({ workload: 'mix', connections: 8, duration: STABILITY_SECONDS, urls: [service.url] }),
        service.pid,
      );
      const samples = sampler.stop();
      const avg = (from: number, to: number) => {
        const s = samples.filter((x) => x.at >= from && x.at < to).map((x) => x.rss);
        return s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
      };
      const base = avg(2, 12);
      const end = avg(STABILITY_SECONDS - 10, STABILITY_SECONDS + 5);
      const max = Math.max(...samples.filter((x) => x.at >= 2).map((x) => x.rss));
      stability = { base, end, max, growth: end / base - 1 };
      const c: Case = {
        workload: `(b) mix, ${STABILITY_SECONDS} s`,
        connections: 8,
        service: result,
        ceiling: ceilingMix.result,
        peakRss: peakRssOf(service.pid),
        baseRss,
        outcomes: await outcomesSince(sql, watermark),
        serviceCpu: cpu,
        ceilingCpu: ceilingMix.cpu,
      };
      say(
        `(b) mix x8 ${STABILITY_SECONDS} s: ${rps(result.rps)} req/s (ratio ${ratioOf(c)!.toFixed(2)}), RSS ${mb(base)} -> ${mb(end)} MB (max ${mb(max)})`,
      );
      cases.push(c);
      cases.push(await measure('(b) mix', job({ workload: 'mix', connections: 64, duration: SECONDS })));
    }

    let fulfilment20: Case | undefined;
    let stored20: number | undefined;
    if (ONLY.has('fulfilment') || ONLY.has('large')) {
      const pdfBytes1 = 1 * MB;
      const pdfBytes20 = 20 * MB;
      const all = ONLY.has('fulfilment'); // 'large': only the 20 MB one-at-a-time case (the targets)
      // Counted, not timed: a timed run would cut slow uploads off mid-flight (and autocannon
      // resends a cut request, which the service rightly answers as a duplicate).
      for (const connections of all ? CONNECTIONS : []) {
        cases.push(
          await measure(
            '(c) fulfilment 1 MB',
            job({
              workload: 'fulfilment',
              connections,
              amount: Math.max(40, connections),
              pdfBytes: pdfBytes1,
              timeoutSeconds: 120,
            }),
            true,
            bodySize(pdfBytes1),
          ),
        );
      }
      // 20 MB: one at a time (the latency and memory target), then 8 and 64 at once.
      // What each one adds to the database (the ceiling writes to a table of its own).
      const storedBytes = async () =>
        (
          await sql<[{ bytes: number }]>`
        select (pg_total_relation_size('deliveries') + pg_total_relation_size('tickets'))::float8 as bytes`
        )[0].bytes;
      const storedBefore = await storedBytes();
      fulfilment20 = await measure(
        '(c) fulfilment 20 MB',
        job({ workload: 'fulfilment', connections: 1, amount: 5, pdfBytes: pdfBytes20, timeoutSeconds: 60 }),
        true,
        bodySize(pdfBytes20),
      );
      cases.push(fulfilment20);
      stored20 = ((await storedBytes()) - storedBefore) / Math.max(1, fulfilment20.outcomes.applied ?? 0);
      for (const connections of all ? CONNECTIONS : []) {
        // At most 32 of these 27 MB requests per case (time); autocannon needs connections <= requests.
        const amount = Math.min(32, Math.max(16, connections));
        cases.push(
          await measure(
            '(c) fulfilment 20 MB',
            job({
              workload: 'fulfilment',
              connections: Math.min(connections, amount),
              amount,
              pdfBytes: pdfBytes20,
              timeoutSeconds: 180,
            }),
            true,
            bodySize(pdfBytes20),
          ),
        );
      }
    }

    let memory:
      | {
          alone: LoadResult;
          during: LoadResult;
          fulfilments: LoadResult;
          peakRss: number;
          baseRss: number;
          applied: number;
          deliveries: number;
        }
      | undefined;
    if (ONLY.has('memory')) {
      // (d) WEBHOOK_MEMORY_LIMIT: 32 fulfilments of 20 MB at once, holds sent meanwhile, against
      // the same holds alone just before. Each fulfilment is applied and answered 200, or answered
      // 503 and not applied.
      // The holds from a load generator of their own: the one sending 32 x 27 MB is busy copying them.
      const holdsLoader = await startLoader();
      const fulfilment = (over: Partial<LoadJob>) =>
        job({
          workload: 'fulfilment',
          connections: 1,
          amount: 1,
          pdfBytes: 20 * MB,
          timeoutSeconds: 120,
          urls: [service.url],
          ...over,
        });
      await loader.run(fulfilment({})); // the loader makes its PDF once, before anything is timed
      await databaseIdle(sql);
      const alone = await holdsLoader.run(job({ workload: 'holds', connections: 8, duration: SECONDS, urls: [service.url] }));
      await databaseIdle(sql);
      const [{ max: watermark }] = await sql<[{ max: string }]>`select coalesce(max(id), 0)::text as max from deliveries`;
      const baseRss = rssOf(service.pid);
      resetPeakRss(service.pid);
      const [fulfilments, during] = await Promise.all([
        loader.run(fulfilment({ connections: 32, amount: 32 })),
        holdsLoader.run(job({ workload: 'holds', connections: 8, duration: SECONDS, urls: [service.url] })),
      ]);
      const peakRss = peakRssOf(service.pid);
      await holdsLoader.stop();
      const rows = await sql<{ outcome: string }[]>`
        select outcome from deliveries where id > ${watermark} and type = 'order.eticket_fulfilment'`;
      memory = {
        alone,
        during,
        fulfilments,
        peakRss,
        baseRss,
        applied: rows.filter((r) => r.outcome === 'applied').length,
        deliveries: rows.length,
      };
      say(
        `(d) 32 x 20 MB: ${JSON.stringify(fulfilments.status)}, ${memory.applied} applied, peak RSS ${mb(peakRss)} MB; holds p99 ${ms(alone.p99)} ms alone, ${ms(during.p99)} ms during`,
      );
    }

    let uploads:
      | {
          unsigned: UploadAnswer[];
          baseRss: number;
          peakRss: number;
          alone: LoadResult;
          during: LoadResult;
          slow: UploadAnswer[];
        }
      | undefined;
    if (ONLY.has('uploads')) {
      // (e) 10 unsigned 45 MB uploads held open (RSS), then 136 uploads at 1 byte/s (more than
      // concurrency 8 + backlog 128) with well-formed signatures that will not match, while holds
      // are sent: the holds against the same holds alone.
      await databaseIdle(sql);
      const baseRss = rssOf(service.pid);
      resetPeakRss(service.pid);
      const held = Array.from({ length: 10 }, () =>
        upload(service.url, { length: 45 * MB, send: 44 * MB, chunk: MB, everyMs: 20, headers: {} }),
      );
      const unsigned = await Promise.all(held.map((u) => u.answered));
      await new Promise((r) => setTimeout(r, 2000)); // held open
      const peakRss = peakRssOf(service.pid);
      for (const u of held) u.close();
      const alone = await loader.run(job({ workload: 'holds', connections: 8, duration: SECONDS, urls: [service.url] }));
      // 136 open at any time: each one ended is replaced at once, as an attacker would.
      const slow: UploadAnswer[] = [];
      let stopped = false;
      const slowUploads = Array.from({ length: 136 }, async () => {
        while (!stopped)
          slow.push(
            await upload(service.url, {
              length: 1000,
              send: 1000,
              chunk: 1,
              everyMs: 1000,
              headers: { 'X-Tixstock-Signature': 'ab'.repeat(32) },
            }).answered,
          );
      });
      await new Promise((r) => setTimeout(r, 1000));
      const during = await loader.run(job({ workload: 'holds', connections: 8, duration: SECONDS, urls: [service.url] }));
      stopped = true;
      await Promise.all(slowUploads);
      uploads = { unsigned, baseRss, peakRss, alone, during, slow };
      say(
        `(e) unsigned: ${JSON.stringify(countBy(unsigned))}, RSS ${mb(baseRss)} -> peak ${mb(peakRss)} MB; slow: ${JSON.stringify(countBy(slow))}; holds p99 ${ms(alone.p99)} ms alone, ${ms(during.p99)} ms during, 503 ${during.status['503'] ?? 0}`,
      );
    }

    let scale: { one: LoadResult; two: LoadResult } | undefined;
    if (ONLY.has('scale')) {
      // Throughput with 1 and 2 service processes on the same database, same total connections.
      const second = await startService(env, 'second service');
      servers.push(second);
      await loader.run(job({ workload: 'holds', connections: 8, duration: 3, urls: [second.url] }));
      const one = await loader.run(job({ workload: 'holds', connections: 64, duration: SECONDS, urls: [service.url] }));
      const two = await loader.run(
        job({ workload: 'holds', connections: 64, duration: SECONDS, urls: [service.url, second.url] }),
      );
      scale = { one, two };
      say(`scale (a) x64: 1 process ${rps(one.rps)} req/s, 2 processes ${rps(two.rps)} req/s`);
    }

    let reconciliation: ReconcileBench | undefined;
    if (ONLY.has('reconcile')) {
      await databaseIdle(sql);
      reconciliation = await reconcileCase({
        env,
        sql,
        loader,
        servers,
        job: (j) => job({ workload: 'holds', connections: 8, ...j }),
        say,
        pgPid,
      });
    }

    // Holds and releases: against the floor of the design, run in the same rounds (median of the
    // rounds' ratios), and at 64 connections against the ceiling's p99.
    const holds8 = cases.find((c) => c.workload === '(a) hold/release' && c.connections === 8);
    const holds64 = cases.find((c) => c.workload === '(a) hold/release' && c.connections === 64);
    const holdsRatio = holds8 && ratioOf(holds8);
    const floorMedian = floorRatios.length
      ? [...floorRatios].sort((a, b) => a - b)[Math.floor(floorRatios.length / 2)]!
      : undefined;
    targets.push({
      name: '(a) at 8 connections: >= 0.9 of the floor req/s (same rounds, median of the rounds)',
      pass: floorMedian === undefined ? undefined : floorMedian >= 0.9,
      measured:
        floorMedian !== undefined && holds8 && floor8
          ? `${floorMedian.toFixed(2)} (rounds ${floorRatios.map((r) => r.toFixed(2)).join(', ')}; totals ${rps(holds8.service.rps)} / ${rps(floor8.service.rps)} req/s)`
          : '-',
    });
    targets.push({
      name: '(a) at 8 connections: share of the ceiling (goal 0.5)',
      pass: holdsRatio === undefined ? undefined : holdsRatio >= 0.5,
      measured: holds8
        ? `${holdsRatio!.toFixed(2)} (${rps(holds8.service.rps)} / ${rps(holds8.ceiling!.rps)} req/s; floor ${floor8 ? ratioOf(floor8)!.toFixed(2) : '-'})`
        : '-',
    });
    targets.push({
      name: '(a) at 64 connections: p99 <= 2x the ceiling p99, no errors, no 503',
      pass: holds64
        ? holds64.service.p99 <= 2 * holds64.ceiling!.p99 && errorsOf(holds64.service) === 0 && !holds64.service.status['503']
        : undefined,
      measured: holds64
        ? `${ms(holds64.service.p99)} ms vs ${ms(holds64.ceiling!.p99)} ms (x${(holds64.service.p99 / holds64.ceiling!.p99).toFixed(2)}), errors ${errorsOf(holds64.service)}, 503 ${holds64.service.status['503'] ?? 0}`
        : '-',
    });
    targets.push({
      name: '(a) at 8 connections: p99 <= 50 ms',
      pass: holds8 ? holds8.service.p99 <= 50 : undefined,
      measured: holds8 ? `${ms(holds8.service.p99)} ms` : '-',
    });
    const errors = cases.reduce((n, c) => n + errorsOf(c.service), 0);
    const failedOutcomes = cases.reduce((n, c) => n + (c.outcomes.failed ?? 0) + (c.outcomes.invalid ?? 0), 0);
    targets.push({
      name: 'no errors (non-200 other than 503; failed or invalid deliveries)',
      pass: cases.length ? errors + failedOutcomes === 0 : undefined,
      measured: `${errors} errors, ${failedOutcomes} failed/invalid`,
    });
    targets.push({
      name: '20 MB fulfilment answered in < 2 s (slowest of 5, one at a time)',
      pass: fulfilment20 ? fulfilment20.service.max < 2000 && errorsOf(fulfilment20.service) === 0 : undefined,
      measured: fulfilment20 ? `${ms(fulfilment20.service.max)} ms (p50 ${ms(fulfilment20.service.p50)} ms)` : '-',
    });
    const growth20 = fulfilment20 ? Math.max(0, fulfilment20.peakRss - fulfilment20.baseRss) : undefined;
    targets.push({
      name: '20 MB fulfilment: peak RSS growth < 6x the body size',
      pass: fulfilment20 ? growth20! < 6 * fulfilment20.bodyBytes! : undefined,
      measured: fulfilment20
        ? `+${mb(growth20!)} MB = ${(growth20! / fulfilment20.bodyBytes!).toFixed(1)}x the ${mb(fulfilment20.bodyBytes!)} MB body`
        : '-',
    });
    targets.push({
      name: '20 MB fulfilment: the database grows by < 1.5x the PDF per webhook (stored once)',
      pass: stored20 === undefined ? undefined : stored20 < 1.5 * 20 * MB,
      measured: stored20 === undefined ? '-' : `+${mb(stored20)} MB (deliveries + tickets) per 20 MB PDF`,
    });
    targets.push({
      name: `RSS stable (<= 10% growth) across ${STABILITY_SECONDS} s of (b)`,
      pass: stability ? stability.growth <= 0.1 : undefined,
      measured: stability
        ? `${mb(stability.base)} -> ${mb(stability.end)} MB (${(stability.growth * 100).toFixed(1)}%), max ${mb(stability.max)} MB`
        : '-',
    });

    const fulfilled = memory ? (memory.fulfilments.status['200'] ?? 0) : 0;
    const refused = memory ? (memory.fulfilments.status['503'] ?? 0) : 0;
    targets.push({
      name: '(d) 32 x 20 MB fulfilments at once: peak RSS < 400 MB',
      pass: memory ? memory.peakRss < 400 * MB : undefined,
      measured: memory ? `${mb(memory.peakRss)} MB (${mb(memory.baseRss)} before)` : '-',
    });
    targets.push({
      name: '(d) each fulfilment applied + 200, or 503 + not applied',
      pass: memory
        ? fulfilled + refused === 32 &&
          memory.applied === fulfilled &&
          memory.deliveries === fulfilled &&
          memory.fulfilments.noAnswer === 0
        : undefined,
      measured: memory
        ? `200: ${fulfilled}, 503: ${refused}, applied: ${memory.applied} (deliveries ${memory.deliveries}), no answer: ${memory.fulfilments.noAnswer}`
        : '-',
    });
    targets.push({
      name: '(d) holds meanwhile keep their p99 (<= 2x holds alone, same run), no errors',
      pass: memory ? memory.during.p99 <= 2 * memory.alone.p99 && errorsOf(memory.during) === 0 : undefined,
      measured: memory
        ? `${ms(memory.during.p99)} ms vs ${ms(memory.alone.p99)} ms alone (${rps(memory.during.rps)} vs ${rps(memory.alone.rps)} req/s), errors ${errorsOf(memory.during)}, 503 ${memory.during.status['503'] ?? 0}`
        : '-',
    });

    if (uploads) {
      const slowest = Math.max(...uploads.slow.map((u) => u.seconds));
      targets.push({
        name: '(e) 10 unsigned 45 MB uploads held open: 401 before the body, RSS +< 50 MB',
        pass:
          uploads.unsigned.every((u) => u.status === 401 && u.written < 44 * MB) && uploads.peakRss - uploads.baseRss < 50 * MB,
        measured: `${JSON.stringify(countBy(uploads.unsigned))}, at most ${mb(Math.max(...uploads.unsigned.map((u) => u.written)))} MB written each; RSS ${mb(uploads.baseRss)} -> peak ${mb(uploads.peakRss)} MB`,
      });
      targets.push({
        name: '(e) 136 uploads at 1 byte/s kept open: each ended (408), signed holds meanwhile get no 503 (p99 shown)',
        pass:
          uploads.slow.every((u) => u.status === 408) &&
          (uploads.during.status['503'] ?? 0) === 0 &&
          errorsOf(uploads.during) === 0,
        measured: `${JSON.stringify(countBy(uploads.slow))}, each ended within ${slowest.toFixed(1)} s; holds ${ms(uploads.during.p99)} ms vs ${ms(uploads.alone.p99)} ms alone, 503 ${uploads.during.status['503'] ?? 0}, errors ${errorsOf(uploads.during)}`,
      });
    }

    const r = reconciliation;
    targets.push({
      name: `reconciliation of ${r?.listings ?? 10_000} listings (5% different, repaired): <= 1.2x the time to fetch the same pages alone`,
      pass: r ? r.runSeconds <= 1.2 * r.fetchSeconds : undefined,
      measured: r
        ? `${r.runSeconds.toFixed(2)} s / ${r.fetchSeconds.toFixed(2)} s = ${(r.runSeconds / r.fetchSeconds).toFixed(2)}x (${r.pages} pages, ${r.differences} differences)`
        : '-',
    });
    targets.push({
      name: 'reconciliation: service RSS growth < 50 MB',
      pass: r ? r.rssGrowth < 50 * MB : undefined,
      measured: r ? `+${mb(r.rssGrowth)} MB (from ${mb(r.rssBase)} MB)` : '-',
    });
    targets.push({
      name: 'reconciliation: holds/releases at 8 connections during a run keep p99 <= 50 ms',
      pass: r ? r.holdsDuringRun.p99 <= 50 && errorsOf(r.holdsDuringRun) === 0 : undefined,
      measured: r
        ? `${ms(r.holdsDuringRun.p99)} ms during (${rps(r.holdsDuringRun.rps)} req/s), ${ms(r.holdsAlone.p99)} ms alone (${rps(r.holdsAlone.rps)} req/s); the run took ${r.runUnderLoadSeconds.toFixed(2)} s under that load`
        : '-',
    });

    const report = [
      `Run ${started.toISOString()} on ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${mb(os.totalmem())} MB RAM, Node ${process.version},`,
      `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')};`,
      `DATABASE_POOL_SIZE=${POOL} (service and ceiling), ${SECONDS} s per case, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}.`,
      '',
      table(cases),
      '',
      scale
        ? `Scale, (a) at 64 connections: 1 process ${rps(scale.one.rps)} req/s (p99 ${ms(scale.one.p99)} ms), ` +
          `2 processes ${rps(scale.two.rps)} req/s (p99 ${ms(scale.two.p99)} ms), x${(scale.two.rps / scale.one.rps).toFixed(2)}; ` +
          `errors ${errorsOf(scale.one) + errorsOf(scale.two)}.\n`
        : '',
      r
        ? `Reconciliation: ${r.listings} listings imported by a first repair run in ${r.importSeconds.toFixed(2)} s; the timed run used ` +
          `${r.cpu.service.toFixed(2)} CPU s in the service and ${r.cpu.postgres.toFixed(2)} in PostgreSQL.\n`
        : '',
      targetsTable(targets),
    ].join('\n');
    process.stdout.write(`\n${report}\n`);
    await mkdir(path.join(ROOT, '.data'), { recursive: true });
    await writeFile(path.join(ROOT, '.data/bench-last-run.md'), report + '\n');
    say('report also written to .data/bench-last-run.md');
  } finally {
    await loader?.stop();
    for (const s of servers.reverse()) await s.stop();
    if (process.env.DATABASE_URL) await sql`drop table if exists bench_ceiling`.catch(() => {});
    await sql.end({ timeout: 2 });
    await stopDb();
  }
}

/** How many of each status. */
function countBy(answers: UploadAnswer[]): Record<string, number> {
  const n: Record<string, number> = {};
  for (const a of answers) n[a.status] = (n[a.status] ?? 0) + 1;
  return n;
}

/** Several runs of one job as one: counts summed; p50 and p99 are the request-weighted means of
 * the runs' (an approximation: the runs' histograms are not merged), max the largest. */
function combineRuns(runs: { result: LoadResult; cpu: CpuUse }[]): { result: LoadResult; cpu: CpuUse } {
  if (runs.length === 1) return runs[0]!;
  const sum = (f: (r: LoadResult) => number) => runs.reduce((n, r) => n + f(r.result), 0);
  const requests = sum((r) => r.requests);
  const seconds = sum((r) => r.seconds);
  const weighted = (f: (r: LoadResult) => number) => sum((r) => f(r) * r.requests) / Math.max(1, requests);
  const status: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.result.status)) status[k] = (status[k] ?? 0) + v;
  const cpuMean = (f: (c: CpuUse) => number) => runs.reduce((n, r) => n + f(r.cpu) * r.result.seconds, 0) / seconds;
  return {
    result: {
      requests,
      seconds,
      rps: requests / seconds,
      p50: weighted((r) => r.p50),
      p99: weighted((r) => r.p99),
      max: Math.max(...runs.map((r) => r.result.max)),
      status,
      noAnswer: sum((r) => r.noAnswer),
    },
    cpu: { server: cpuMean((c) => c.server), postgres: cpuMean((c) => c.postgres), loader: cpuMean((c) => c.loader) },
  };
}

/** The webhook body size for a PDF of n bytes: base64 (4/3) with "/" escaped, plus the envelope. */
function bodySize(pdfBytes: number): number {
  return Math.round(((pdfBytes * 4) / 3) * (1 + 1 / 64)) + 200;
}

/** The 50 listings of workload (a), each with the largest quantity a listing may have, so
 * that holds never run them down to 0 during the run. */
async function addListings(url: string): Promise<string[]> {
  const add = readFileSync(path.join(ROOT, 'test/fixtures/ticket.add.json'), 'latin1').replace(
    '"quantity_available":4',
    '"quantity_available":100000',
  );
  const ids: string[] = [];
  for (let i = 0; i < LISTINGS; i++) {
    const body = Buffer.from(add.replace('{"data":{', `{"data":{"bench_seq":"${runTag}-setup-${i}",`), 'latin1');
    const res = await fetch(`${url}/webhooks/tixstock`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Tixstock-Version': 'v1', 'X-Tixstock-Signature': sign(body, TOKEN) },
      body: new Uint8Array(body),
    });
    const reply = (await res.json()) as { listing_id?: string; success?: boolean };
    if (res.status !== 200 || reply.success !== true || !reply.listing_id)
      throw new Error(`ticket.add failed: ${res.status} ${JSON.stringify(reply)}`);
    ids.push(reply.listing_id);
  }
  return ids;
}

/** Waits until no statement of a previous case is still running, so cases do not overlap, and
 * vacuums the listings: workload (a) updates the same 50 rows tens of thousands of times, and
 * the dead row versions it leaves would slow whichever case came next (a 60 s mix ran at less
 * than half its speed after the floor's case) while autovacuum catches up. */
async function walSyncs(sql: postgres.Sql): Promise<number> {
  const [{ n }] = await sql<[{ n: number }]>`select wal_sync::float8 as n from pg_stat_wal`;
  return n;
}

async function databaseIdle(sql: postgres.Sql): Promise<void> {
  await waitIdle(sql);
  await sql`vacuum listings`;
}

async function waitIdle(sql: postgres.Sql): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const [{ n }] = await sql<[{ n: number }]>`
      select count(*)::int as n from pg_stat_activity
       where backend_type = 'client backend' and pid <> pg_backend_pid() and state <> 'idle'`;
    if (n === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function outcomesSince(sql: postgres.Sql, watermark: string): Promise<Record<string, number>> {
  const rows = await sql<{ outcome: string; n: number }[]>`
    select outcome, count(*)::int as n from deliveries where id > ${watermark} group by outcome`;
  return Object.fromEntries(rows.map((r) => [r.outcome, r.n]));
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  killAll();
  process.exitCode = 1;
});
