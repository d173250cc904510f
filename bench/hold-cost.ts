// What one hold costs PostgreSQL, by index set: the floor's statement (bench/floor.ts) run
// sequentially on one connection, synchronous_commit off (the WAL flush per commit is the same
// for every variant), measuring the backend's CPU time and the WAL bytes per hold. Both are
// counted, not timed, so they hold on a busy shared machine where requests/s do not.
//
//   node --import tsx bench/hold-cost.ts    (HOLD_COST_N holds per variant and round, default 4000;
//                                            HOLD_COST_LOG rows of log before, default 200000)
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type postgres from 'postgres';
import { ROOT } from './processes.js';
import { scratchDatabase } from './scratch-db.js';

const N = Number(process.env.HOLD_COST_N ?? 4000);
const LOG_ROWS = Number(process.env.HOLD_COST_LOG ?? 200_000);
const ROUNDS = 3;

/** Each variant is DDL applied over the migrated schema (and undone after it). */
const VARIANTS: { name: string; apply: string; undo: string }[] = [
  { name: 'as migrated', apply: '', undo: '' },
  {
    name: 'retry index without deltas',
    apply: `drop index deliveries_retry_idx;
            create index deliveries_retry_idx on deliveries (body_sha256, received_at) where outcome = 'applied' and type not in ('ticket.hold', 'ticket.release')`,
    undo: `drop index deliveries_retry_idx;
           create index deliveries_retry_idx on deliveries (body_sha256, received_at) where outcome = 'applied'`,
  },
  {
    name: 'no retry index',
    apply: 'drop index deliveries_retry_idx',
    undo: `create index deliveries_retry_idx on deliveries (body_sha256, received_at) where outcome = 'applied'`,
  },
  {
    name: 'no type index',
    apply: 'drop index deliveries_type_idx',
    undo: 'create index deliveries_type_idx on deliveries (type, id)',
  },
  {
    name: 'no outcome index',
    apply: 'drop index deliveries_outcome_idx',
    undo: 'create index deliveries_outcome_idx on deliveries (outcome, id)',
  },
  {
    name: 'no listing index',
    apply: 'drop index deliveries_listing_idx',
    undo: 'create index deliveries_listing_idx on deliveries (listing_id) where listing_id is not null',
  },
  {
    name: 'no ledger foreign key to deliveries',
    apply: 'alter table listing_quantity_changes drop constraint listing_quantity_changes_delivery_id_fkey',
    undo: 'alter table listing_quantity_changes add constraint listing_quantity_changes_delivery_id_fkey foreign key (delivery_id) references deliveries (id)',
  },
  {
    name: 'brin on received_at added',
    apply: 'create index deliveries_received_brin on deliveries using brin (received_at)',
    undo: 'drop index deliveries_received_brin',
  },
  {
    name: 'btree on received_at added',
    apply: 'create index deliveries_received_idx on deliveries (received_at)',
    undo: 'drop index deliveries_received_idx',
  },
];

function holdStatement(sql: postgres.Sql, listingId: string, seq: number, noLedger: boolean) {
  const body = Buffer.from(
    `{"data":{"external_id":"${listingId}","hold_quantity":1,"seq":${seq}},"meta":{"type":"ticket.hold"}}`,
  );
  return sql`
    with d_id as (select nextval('deliveries_id_seq') as id),
    old as (select id, status, quantity, quantity_ceiling from listings where id = ${listingId} for update),
    changed as (
      update listings l set quantity = greatest(0, least(old.quantity_ceiling, old.quantity + ${seq % 2 ? 1 : -1}::int)), updated_at = now()
        from old where l.id = old.id and old.status = 'published'
      returning l.id, old.quantity as before, l.quantity as after
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
      select changed.id, d_id.id, 'ticket.hold', 1, before, after from changed, d_id where ${!noLedger}
    ), d as (
      insert into deliveries (id, version, type, path, headers, body, body_sha256, outcome, status, reply, listing_id)
      overriding system value
      select d_id.id, 'v1', 'ticket.hold', '/webhooks/tixstock', ${sql.json({ 'content-type': 'application/json' })}, ${body},
             sha256(${body}::bytea), 'applied', 200,
             json_build_object('listing_id', ${listingId}::text, 'success', true, 'message', 'quantity ' || changed.before || ' -> ' || changed.after),
             ${listingId}
        from d_id left join changed on true
      returning reply
    )
    select reply from d`;
}

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (1/100 s)
};

async function main() {
  const data = readFileSync(path.join(ROOT, 'test/fixtures/ticket.add.json'), 'utf8');
  const { sql, listingIds, stop } = await scratchDatabase('hold-cost', data);
  try {
    // A log of holds already there, so that index inserts land in indexes of a realistic size.
    await sql`
      insert into deliveries (version, type, path, headers, body, body_sha256, outcome, status, reply, listing_id)
      select 'v1', case when i % 2 = 0 then 'ticket.hold' else 'ticket.release' end, '/webhooks/tixstock', '{}',
             convert_to('{"seq":' || i || '}', 'UTF8'), sha256(int8send(i)), 'applied', 200, '{}', ${listingIds[0]!}::bigint + i % 50
        from generate_series(1, ${LOG_ROWS}) i`;
    await sql`vacuum analyze`;
    await sql`set synchronous_commit = off`;
    const [{ pid }] = await sql<[{ pid: number }]>`select pg_backend_pid() as pid`;
    const results = new Map<string, { cpu: number[]; wal: number[] }>();
    let seq = 0;
    const run = async (noLedger = false) => {
      await sql`checkpoint`;
      await sql`vacuum listings`;
      const [{ lsn: lsn0 }] = await sql<[{ lsn: string }]>`select pg_current_wal_insert_lsn()::text as lsn`;
      const t0 = ticks(pid);
      for (let i = 0; i < N; i++, seq++) await holdStatement(sql, listingIds[seq % listingIds.length]!, seq, noLedger);
      const cpuMs = ((ticks(pid) - t0) * 10) / N;
      const [{ bytes }] = await sql<
        [{ bytes: number }]
      >`select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${lsn0}::pg_lsn)::float8 as bytes`;
      return { cpuMs, walBytes: bytes / N };
    };
    const note = (name: string, r: { cpuMs: number; walBytes: number }) => {
      const e = results.get(name) ?? { cpu: [], wal: [] };
      e.cpu.push(r.cpuMs);
      e.wal.push(r.walBytes);
      results.set(name, e);
      process.stderr.write(`[hold-cost] ${name}: ${r.cpuMs.toFixed(3)} ms CPU, ${Math.round(r.walBytes)} WAL bytes per hold\n`);
    };
    await run(); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of VARIANTS) {
        if (v.apply) await sql.unsafe(v.apply);
        note(v.name, await run());
        if (v.undo) await sql.unsafe(v.undo);
      }
      note('no ledger row (upper bound of one write)', await run(true));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const base = results.get('as migrated')!;
    const lines = [
      '| variant | PostgreSQL CPU ms per hold (median of 3) | vs as migrated | WAL bytes per hold | vs as migrated |',
      '| --- | --- | --- | --- | --- |',
    ];
    for (const [name, r] of results) {
      const cpu = median(r.cpu);
      const wal = median(r.wal);
      lines.push(
        `| ${name} | ${cpu.toFixed(3)} | ${(cpu / median(base.cpu)).toFixed(2)} | ${Math.round(wal)} | ${(wal / median(base.wal)).toFixed(2)} |`,
      );
    }
    process.stdout.write(
      `${N} holds per variant and round after a checkpoint, ${LOG_ROWS} rows of log before, 3 rounds\n\n${lines.join('\n')}\n`,
    );
  } finally {
    await stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
