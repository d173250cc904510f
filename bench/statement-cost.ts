// What PostgreSQL spends on one hold's statement: the floor's (bench/floor.ts) against the
// service's (inventory/quantity-deltas.ts) alone and in batches of 4 and 16 (as the service
// sends holds that arrive together), run sequentially on one connection with synchronous_commit
// off, counting the backend's CPU ticks per hold (counted, not timed).
//   node --import tsx bench/statement-cost.ts   (STATEMENT_COST_N holds per variant and round, default 3000)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { applyQuantityDeltas, type DeltaOfDelivery } from '../src/inventory/quantity-deltas.js';
import { cpuSecondsOfTree, postmasterPid } from './cpu.js';
import { floorStatement } from './floor-statement.js';
import { scratchDatabase } from './scratch-db.js';

const N = Number(process.env.STATEMENT_COST_N ?? 3000);
const ROUNDS = 3;
const HEADERS = {
  'content-type': 'application/json',
  'content-length': '90',
  'tixstock-version': 'v1',
  'user-agent': 'Tixstock API',
};

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};

/** One hold or release as the service's statement (inventory/quantity-deltas.ts) takes it. */
function serviceItem(id: string, body: Buffer, hold: boolean, deliveryId: string): DeltaOfDelivery {
  const type = hold ? 'ticket.hold' : 'ticket.release';
  return {
    delta: { kind: type, listingId: id, n: 1 },
    delivery: {
      id: deliveryId,
      version: 'v1',
      type,
      path: '/webhooks/tixstock',
      headers: HEADERS,
      body,
      bodySha256: createHash('sha256').update(body).digest(),
      redacted: false,
      replayOf: null,
    },
  };
}

const floorOf = (sql: postgres.Sql, id: string, body: Buffer, hold: boolean) =>
  floorStatement(sql, id, body, '/webhooks/tixstock', hold ? 'ticket.hold' : 'ticket.release', 1, hold ? -1 : 1);

async function main() {
  const { url, sql, dataDir, listingIds, stop } = await scratchDatabase('statement-cost');
  try {
    await sql`set synchronous_commit = off`;
    const [{ pid }] = await sql<[{ pid: number }]>`select pg_backend_pid() as pid`;
    let seq = 0;
    /** The service's statement for `size` holds on different listings, sent when that many are in. */
    const batchOf = (size: number) => {
      const batch: DeltaOfDelivery[] = [];
      return async (_id: string, body: Buffer, hold: boolean) => {
        batch.push(serviceItem(listingIds[(batch.length * 3) % listingIds.length]!, body, hold, ''));
        if (batch.length < size) return;
        const ids = await sql<{ n: string }[]>`select nextval('deliveries_id_seq')::text as n from generate_series(1, ${size})`;
        const items = batch.splice(0).map((x, k) => ({ ...x, delivery: { ...x.delivery, id: ids[k]!.n } }));
        return applyQuantityDeltas(sql, items);
      };
    };
    const variants: Record<string, (id: string, body: Buffer, hold: boolean) => Promise<unknown>> = {
      floor: (id, body, hold) => floorOf(sql, id, body, hold),
      service: async (id, body, hold) => {
        const [{ n }] = await sql<[{ n: string }]>`select nextval('deliveries_id_seq')::text as n`;
        return applyQuantityDeltas(sql, [serviceItem(id, body, hold, n)]);
      },
      'service, batches of 4 (per hold)': batchOf(4),
      'service, batches of 16 (per hold)': batchOf(16),
      'id only (the service takes ids ahead: subtract this)': async () => sql`select nextval('deliveries_id_seq')::text as n`,
    };
    const results = new Map<string, number[]>();
    for (let round = 0; round <= ROUNDS; round++) {
      for (const [name, run] of Object.entries(variants)) {
        const t0 = ticks(pid);
        for (let i = 0; i < N; i++, seq++) {
          const id = listingIds[seq % listingIds.length]!;
          const body = Buffer.from(
            `{"data":{"external_id":"${id}","hold_quantity":1,"seq":${seq}},"meta":{"type":"ticket.hold"}}`,
          );
          await run(id, body, seq % 2 === 0);
        }
        const ms = ((ticks(pid) - t0) * 10) / N;
        if (round > 0) results.set(name, [...(results.get(name) ?? []), ms]); // round 0 warms up
        process.stderr.write(`[statement-cost] ${name}: ${ms.toFixed(3)} ms CPU per hold\n`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // The same two statements from 8 concurrent callers on an unreserved pool of 8 (as the floor
    // and the service send them), synchronous_commit on: PostgreSQL's CPU (every backend) per hold.
    const pool = postgres(url, { max: 8, onnotice: () => {} });
    const pgPid = postmasterPid(dataDir)!;
    let ids: string[] = [];
    const concurrent: Record<string, (id: string, body: Buffer, hold: boolean) => Promise<unknown>> = {
      'floor x8': (id, body, hold) => floorOf(pool, id, body, hold),
      'service x8 (ids 32 ahead)': async (id, body, hold) => {
        if (ids.length === 0)
          ids = (await pool<{ n: string }[]>`select nextval('deliveries_id_seq')::text as n from generate_series(1, 32)`).map(
            (r) => r.n,
          );
        return applyQuantityDeltas(pool, [serviceItem(id, body, hold, ids.shift()!)]);
      },
    };
    for (let round = 0; round <= ROUNDS; round++) {
      for (const [name, run] of Object.entries(concurrent)) {
        const c0 = cpuSecondsOfTree(pgPid);
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            for (let i = 0; i < N / 8; i++) {
              const at = seq++;
              const id = listingIds[at % listingIds.length]!;
              await run(
                id,
                Buffer.from(`{"data":{"external_id":"${id}","hold_quantity":1,"seq":${at}},"meta":{"type":"ticket.hold"}}`),
                at % 2 === 0,
              );
            }
          }),
        );
        const wall = (performance.now() - t0) / 1000;
        const ms = ((cpuSecondsOfTree(pgPid) - c0) * 1000) / N;
        if (round > 0) results.set(name, [...(results.get(name) ?? []), ms]);
        process.stderr.write(`[statement-cost] ${name}: ${ms.toFixed(3)} ms CPU per hold, ${Math.round(N / wall)}/s\n`);
      }
    }
    await pool.end();
    for (const [name, xs] of results)
      process.stdout.write(`| ${name} | ${median(xs).toFixed(3)} | ${xs.map((x) => x.toFixed(3)).join(', ')} |\n`);
  } finally {
    await stop();
  }
}

await main();
