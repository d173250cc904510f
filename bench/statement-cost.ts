// What PostgreSQL spends on one hold's statement: the floor's (bench/floor.ts) against the
// service's (inventory/quantity-deltas.ts), run sequentially on one connection with
// synchronous_commit off, counting the backend's CPU ticks per hold (counted, not timed); and,
// as a bound for batching (not what the service does), four holds in one statement.
//   node --import tsx bench/statement-cost.ts   (STATEMENT_COST_N holds per variant and round, default 3000)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { applyQuantityDelta } from '../src/inventory/quantity-deltas.js';
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

/** Our statement (inventory/quantity-deltas.ts) for delivery id `deliveryId`. */
function serviceStatement(sql: postgres.Sql, id: string, body: Buffer, hold: boolean, deliveryId: string) {
  const type = hold ? 'ticket.hold' : 'ticket.release';
  return applyQuantityDelta(
    sql,
    { kind: type, listingId: id, n: 1 },
    {
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
  );
}

const floorOf = (sql: postgres.Sql, id: string, body: Buffer, hold: boolean) =>
  floorStatement(sql, id, body, '/webhooks/tixstock', hold ? 'ticket.hold' : 'ticket.release', 1, hold ? -1 : 1);

/** Four holds or releases on four different listings in ONE statement (listings locked in id
 * order): not what the service does, a bound for batching them (group commit). */
function batchStatement(sql: postgres.Sql, items: { id: string; body: Buffer; hold: boolean; deliveryId: string }[]) {
  const col = <T>(f: (x: (typeof items)[number]) => T) => items.map(f);
  return sql`
    with input as (
      select * from unnest(${col((x) => x.deliveryId)}::bigint[], ${col((x) => x.id)}::bigint[],
                           ${col((x) => (x.hold ? 'ticket.hold' : 'ticket.release'))}::text[],
                           ${col((x) => `\\x${x.body.toString('hex')}`)}::bytea[],
                           ${col((x) => `\\x${createHash('sha256').update(x.body).digest('hex')}`)}::bytea[])
             as t(did, lid, kind, body, sha)
    ), old as (
      select l.id, l.status, l.quantity, l.quantity_ceiling from listings l
       where l.id in (select lid from input) order by l.id for update
    ), changed as (
      update listings l
         set quantity = case when i.kind = 'ticket.hold' then greatest(0, old.quantity - 1) else least(old.quantity_ceiling, old.quantity + 1) end,
             updated_at = now()
        from old join input i on i.lid = old.id
       where l.id = old.id and old.status = 'published'
      returning l.id, old.quantity as before, l.quantity as after
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
      select c.id, i.did, i.kind, 1, c.before, c.after from changed c join input i on i.lid = c.id
    ), d as (
      insert into deliveries (id, version, type, path, headers, body, body_sha256, redacted, outcome, status, reply, replay_of, listing_id)
      overriding system value
      select i.did, 'v1', i.kind, '/webhooks/tixstock', ${JSON.stringify(HEADERS)}::jsonb, i.body, i.sha, false,
             case when c.id is null then 'rejected' else 'applied' end, 200,
             json_build_object('listing_id', i.lid::text, 'success', true, 'message', '1 held on listing ' || i.lid || '; quantity ' || c.before || ' -> ' || c.after),
             null, i.lid
        from input i left join changed c on c.id = i.lid
      returning id
    )
    select count(*) from d`;
}

async function main() {
  const { url, sql, dataDir, listingIds, stop } = await scratchDatabase('statement-cost');
  try {
    await sql`set synchronous_commit = off`;
    const [{ pid }] = await sql<[{ pid: number }]>`select pg_backend_pid() as pid`;
    let seq = 0;
    const batch: { id: string; body: Buffer; hold: boolean; deliveryId: string }[] = [];
    const variants: Record<string, (id: string, body: Buffer, hold: boolean) => Promise<unknown>> = {
      floor: (id, body, hold) => floorOf(sql, id, body, hold),
      service: async (id, body, hold) => {
        const [{ n }] = await sql<[{ n: string }]>`select nextval('deliveries_id_seq')::text as n`;
        return serviceStatement(sql, id, body, hold, n);
      },
      'batch of 4 in one statement (per hold)': async (_id, body, hold) => {
        batch.push({ id: listingIds[batch.length * 7]!, body, hold, deliveryId: '' });
        if (batch.length < 4) return;
        const ids = await sql<{ n: string }[]>`select nextval('deliveries_id_seq')::text as n from generate_series(1, 4)`;
        const items = batch.splice(0).map((x, k) => ({ ...x, deliveryId: ids[k]!.n }));
        return batchStatement(sql, items);
      },
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
        return serviceStatement(pool, id, body, hold, ids.shift()!);
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
