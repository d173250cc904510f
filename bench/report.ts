// The bench's table (markdown, so it can be pasted into bench/RESULTS.md) and its targets.
import type { LoadResult } from './load.js';

/** CPU used during a run, in cores (CPU seconds / wall seconds). */
export interface CpuUse {
  server: number;
  postgres: number;
  loader: number;
}

export interface Case {
  workload: string;
  connections: number;
  service: LoadResult;
  ceiling?: LoadResult;
  /** Peak RSS of the service during the case, and its RSS just before. */
  peakRss: number;
  baseRss: number;
  /** Delivery log outcomes of the case's webhooks, as a check that real work was measured. */
  outcomes: Record<string, number>;
  bodyBytes?: number;
  serviceCpu?: CpuUse;
  ceilingCpu?: CpuUse;
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0);
const ms = (n: number) => (n < 10 ? n.toFixed(1) : n.toFixed(0));
const rps = (n: number) => (n < 100 ? n.toFixed(1) : n.toFixed(0));

/** Answers that are neither 200 nor deliberate back-pressure (503), plus requests never answered. */
export function errorsOf(r: LoadResult): number {
  let n = r.noAnswer;
  for (const [code, count] of Object.entries(r.status)) if (code !== '200' && code !== '503') n += count;
  return n;
}

export function ratioOf(c: Case): number | undefined {
  return c.ceiling ? c.service.rps / c.ceiling.rps : undefined;
}

const cpu = (u: CpuUse | undefined) => (u ? `${u.server.toFixed(2)}/${u.postgres.toFixed(2)}/${u.loader.toFixed(2)}` : '-');

export function table(cases: Case[]): string {
  const head = [
    'workload',
    'conns',
    'req/s',
    'ceiling req/s',
    'ratio',
    'p50 ms',
    'p99 ms',
    'max ms',
    'ceiling p99 ms',
    'requests',
    'errors',
    '503',
    'peak RSS MB (+growth)',
    'CPU cores server/pg/load',
    'ceiling CPU',
    'outcomes',
  ];
  const rows = cases.map((c) => {
    const ratio = ratioOf(c);
    const outcomes = Object.entries(c.outcomes)
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return [
      c.workload,
      String(c.connections),
      rps(c.service.rps),
      c.ceiling ? rps(c.ceiling.rps) : '-',
      ratio === undefined ? '-' : ratio.toFixed(2),
      ms(c.service.p50),
      ms(c.service.p99),
      ms(c.service.max),
      c.ceiling ? ms(c.ceiling.p99) : '-',
      String(c.service.requests),
      String(errorsOf(c.service)),
      String(c.service.status['503'] ?? 0),
      `${mb(c.peakRss)} (+${mb(Math.max(0, c.peakRss - c.baseRss))})`,
      cpu(c.serviceCpu),
      cpu(c.ceilingCpu),
      outcomes,
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface Target {
  name: string;
  pass: boolean | undefined;
  measured: string;
}

export function targetsTable(targets: Target[]): string {
  return [
    '| target | measured | result |',
    '| --- | --- | --- |',
    ...targets.map((t) => `| ${t.name} | ${t.measured} | ${t.pass === undefined ? 'not run' : t.pass ? 'PASS' : 'FAIL'} |`),
  ].join('\n');
}

export { mb, ms, rps };
