// The delivery log: one row per signed webhook (and per replay), written in the same
// transaction that applies it. Only this file writes the deliveries table, but for the
// one statement of a hold or release (inventory/quantity-deltas.ts), which records itself.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { PendingQuery } from 'postgres';
import { type Fragment, pageWhere, type Sql, type Tx } from '../db/connect.js';
import { copyRowReturningId, type CopyColumns } from '../db/copy.js';
import { transactionWithDeadline } from '../db/transaction.js';
import type { RecordedDelta } from '../inventory/quantity-deltas.js';
import { pdfBySha256 } from '../tickets/store.js';
import type { Outcome } from '../replies.js';
import { rebuiltBody, type BodyFile } from './stored-body.js';

/** What a delivery touched, stored on its log row for search and support. */
export interface DeliveryRefs {
  listing_id?: string | null;
  event_id?: string | null;
  order_id?: string | null;
  broker_id?: string | null;
}

export interface NewDelivery {
  version: string;
  type: string | null;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Of the body as received (retries are found by it), also when `body` holds less. */
  bodySha256: Buffer;
  /** Set when `body` is the received one with its file replaced by a ticket reference. */
  bodyFile?: BodyFile | null;
  /** The size of the body as received, when `body` holds less. */
  bodyBytes?: number | null;
  redacted: boolean;
  outcome: Outcome;
  status: number;
  reply: Record<string, unknown>;
  error?: string | null;
  duplicateOf?: string | null;
  replayOf?: string | null;
  refs?: DeliveryRefs;
  /** The listing, event, broker or order an absolute-state webhook set (registry.ts entityKey). */
  entity?: string | null;
}

/** Bodies from this size on are never sent as a query parameter (see copyDelivery, bodyParam). */
const LARGE_BODY_MIN = 64 * 1024;

/** The body as a query parameter. postgres.js sends a Buffer as hex text, twice its size, so a
 * large body goes as text and is turned back into bytes by convert_to(): only when it is valid
 * UTF-8 without NUL (which a text parameter cannot carry), so that the stored bytes are exactly
 * those received. (Only one-statement webhooks, whose bodies are small, still get here with a
 * large body; insertDelivery copies them.) */
function bodyParam(db: Sql | Tx, body: Buffer) {
  if (body.length < LARGE_BODY_MIN || !isUtf8(body) || body.includes(0)) return body;
  return db`convert_to(${body.toString('utf8')}, 'UTF8')`;
}

export async function insertDelivery(db: Sql | Tx, d: NewDelivery): Promise<string> {
  if (d.body.length >= LARGE_BODY_MIN) return copyDelivery(db, d);
  const [row] = await db<{ id: string }[]>`
    insert into deliveries (version, type, path, headers, body, body_sha256, body_file, body_bytes, redacted, outcome, status,
                            reply, error, duplicate_of, replay_of, listing_id, event_id, order_id, broker_id, entity)
    values (${d.version}, ${d.type}, ${d.path}, ${db.json(d.headers)}, ${d.body}, ${d.bodySha256},
            ${d.bodyFile ? db.json(d.bodyFile as never) : null}, ${d.bodyBytes ?? null}, ${d.redacted},
            ${d.outcome}, ${d.status}, ${db.json(d.reply as never)}, ${d.error ?? null}, ${d.duplicateOf ?? null},
            ${d.replayOf ?? null}, ${d.refs?.listing_id ?? null}, ${d.refs?.event_id ?? null},
            ${d.refs?.order_id ?? null}, ${d.refs?.broker_id ?? null}, ${d.entity ?? null})
    returning id`;
  return row!.id;
}

const COPY_COLUMNS: CopyColumns = {
  version: 'text',
  type: 'text',
  path: 'text',
  headers: 'jsonb',
  body: 'bytea',
  body_sha256: 'bytea',
  body_file: 'jsonb',
  body_bytes: 'int4',
  redacted: 'bool',
  outcome: 'text',
  status: 'int2',
  reply: 'json',
  error: 'text',
  duplicate_of: 'int8',
  replay_of: 'int8',
  listing_id: 'int8',
  event_id: 'text',
  order_id: 'text',
  broker_id: 'text',
  entity: 'text',
};

/** A large delivery (ticket PDFs of tens of MB) is written with COPY (db/copy.ts), in slices,
 * as bytes, instead of as one parameter built and copied in memory. */
function copyDelivery(db: Sql | Tx, d: NewDelivery): Promise<string> {
  return copyRowReturningId(db, 'deliveries', COPY_COLUMNS, {
    version: d.version,
    type: d.type,
    path: d.path,
    headers: JSON.stringify(d.headers),
    body: d.body,
    body_sha256: d.bodySha256,
    body_file: d.bodyFile ? JSON.stringify(d.bodyFile) : null,
    body_bytes: d.bodyBytes,
    redacted: d.redacted,
    outcome: d.outcome,
    status: d.status,
    reply: JSON.stringify(d.reply),
    error: d.error,
    duplicate_of: d.duplicateOf,
    replay_of: d.replayOf,
    listing_id: d.refs?.listing_id,
    event_id: d.refs?.event_id,
    order_id: d.refs?.order_id,
    broker_id: d.refs?.broker_id,
    entity: d.entity,
  });
}

/** The stored body of delivery `id` when it holds a ticket reference instead of its file: a
 * retry of it (the same bytes) is stored the same way without checking its file again. */
export async function referencedBodyOf(tx: Tx, id: string): Promise<{ body?: Buffer; bodyFile?: BodyFile; bodyBytes?: number }> {
  const [row] = await tx<{ body: Buffer; body_file: BodyFile; body_bytes: number | null }[]>`
    select body, body_file, body_bytes from deliveries where id = ${id} and body_file is not null and body is not null`;
  return row ? { body: row.body, bodyFile: row.body_file, bodyBytes: row.body_bytes ?? undefined } : {};
}

/** Puts the whole received body back in place of a ticket reference that names no stored PDF
 * (bodyWithTicketReference assumes the handler stores it whenever it applies the webhook). */
export async function restoreFullBody(tx: Tx, id: string, body: Buffer): Promise<void> {
  await tx`update deliveries set body = ${bodyParam(tx, body)}, body_file = null, body_bytes = null where id = ${id}`;
}

/** Ids taken ahead from the log's own sequence, at most this many at a time (twice as many as
 * the last batch used, so that a quiet dyno leaves few gaps in the log's ids)... */
const IDS_AHEAD = 32;
/** ...and used within this long, so that ids stay in the order deliveries arrived, to within it,
 * across processes (support lists the log by id; retention walks it by id). */
const IDS_FRESH_MS = 1000;

interface IdsAhead {
  ids: string[];
  takenAt: number;
  /** How many ids of the last batch were used. */
  used: number;
  taking?: Promise<void>;
}
const idsAhead = new WeakMap<Sql, IdsAhead>();

/** A new delivery id for a one-statement webhook, known before its statement is sent, so that a
 * statement whose answer was lost can be confirmed by id (deliveryCommitted). Ids come from the
 * table's sequence (unique on every dyno), a batch per round trip; unused ones are left as gaps. */
export function takeDeliveryId(sql: Sql): string | Promise<string> {
  let ahead = idsAhead.get(sql);
  if (!ahead) idsAhead.set(sql, (ahead = { ids: [], takenAt: 0, used: 0 }));
  return freshId(ahead) ?? takeDeliveryIdAfterRoundTrip(sql, ahead);
}

/** An id of the batch in hand while it is fresh (IDS_FRESH_MS). */
function freshId(ahead: IdsAhead): string | undefined {
  if (Date.now() - ahead.takenAt > IDS_FRESH_MS) ahead.ids.length = 0;
  const id = ahead.ids.shift();
  if (id !== undefined) ahead.used++;
  return id;
}

async function takeDeliveryIdAfterRoundTrip(sql: Sql, ahead: IdsAhead): Promise<string> {
  for (;;) {
    ahead.taking ??= takeIds(sql, ahead).finally(() => {
      ahead.taking = undefined;
    });
    await ahead.taking;
    const id = freshId(ahead); // another caller may have used the batch up: then take another
    if (id !== undefined) return id;
  }
}

async function takeIds(sql: Sql, ahead: IdsAhead): Promise<void> {
  const n = Math.min(IDS_AHEAD, Math.max(1, 2 * ahead.used));
  const rows = await sql<{ id: string }[]>`
    select nextval(pg_get_serial_sequence('deliveries', 'id'))::text as id from generate_series(1, ${n})`;
  ahead.ids = rows.map((r) => r.id).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  ahead.takenAt = Date.now();
  ahead.used = 0;
}

/** What a hold's or release's statement returned for delivery `id` (inventory/quantity-deltas.ts),
 * read back after its answer was lost. */
export async function recordedDelivery(sql: Sql, id: string): Promise<RecordedDelta> {
  const [row] = await sql<RecordedDelta[]>`select id, outcome, reply, listing_id from deliveries where id = ${id}`;
  if (!row) throw new Error(`delivery ${id} was confirmed committed but is not in the log`);
  return row;
}

/** Records how an applied delivery ended, in the transaction that applied it. The statement is
 * sent at once and not awaited here: the caller lets the transaction's COMMIT follow it in the
 * same round trip, and awaits the returned promise after the commit (see process.ts). */
export function finishDelivery(
  tx: Tx,
  id: string,
  outcome: Outcome,
  reply: Record<string, unknown>,
  refs: DeliveryRefs = {},
  entity: string | null = null,
): Promise<unknown> {
  // An applied delivery of an entity becomes its latest (see findRetryOfEntity), in the same statement.
  const latest =
    entity !== null && outcome === 'applied'
      ? tx`with latest as (
           insert into delivery_entities (entity, delivery_id) values (${entity}, ${id})
           on conflict (entity) do update set delivery_id = excluded.delivery_id
         )`
      : tx``;
  const update = tx`
    ${latest}
    update deliveries
       set outcome = ${outcome}, reply = ${tx.json(reply as never)},
           listing_id = ${refs.listing_id ?? null}, event_id = ${refs.event_id ?? null},
           order_id = ${refs.order_id ?? null}, broker_id = ${refs.broker_id ?? null}, entity = ${entity}
     where id = ${id}`.execute();
  update.catch(() => {}); // awaited later by the caller; until then a failure is not unhandled
  return update;
}

class ProbeRolledBack extends Error {}

/** After a COMMIT whose answer was lost: did the transaction that inserted delivery `id` commit?
 * Looking for the row is not enough, because the server may not have finished that transaction
 * yet (its connection was cut with COMMIT still in the socket). So this inserts a row with the
 * same id and rolls it back: the primary key makes the probe wait until that transaction ends,
 * then fail if it committed, or go through if it did not. */
export async function deliveryCommitted(sql: Sql, id: string): Promise<boolean> {
  try {
    await transactionWithDeadline(sql, 5000, async (tx) => {
      await tx`set local lock_timeout = '4s'`;
      await tx`
        insert into deliveries (id, version, path, headers, body, body_sha256, outcome, status, reply)
        overriding system value
        values (${id}, 'probe', '', '{}', '', '', 'failed', 0, '{}')`;
      throw new ProbeRolledBack();
    });
  } catch (err) {
    if (err instanceof ProbeRolledBack) return false;
    if ((err as { code?: unknown }).code === '23505') return true; // unique_violation: it committed
    throw err; // not known yet: the caller asks again
  }
  return false;
}

export interface PriorDelivery {
  id: string;
  status: number;
  reply: Record<string, unknown>;
  listing_id: string | null;
  event_id: string | null;
  order_id: string | null;
  broker_id: string | null;
}

/** Takes the transaction-scoped advisory lock `key` (a bigint as text) and runs `lookup` after it
 * in the same round trip (postgres.js pipelines what is not awaited); the lookup still runs after
 * the lock is granted, with a snapshot taken then, because PostgreSQL runs a connection's
 * statements in order. */
async function lockedLookup(tx: Tx, key: Fragment, lookup: PendingQuery<PriorDelivery[]>): Promise<PriorDelivery | undefined> {
  const lock = tx`select pg_advisory_xact_lock(${key})`.execute();
  lock.catch(() => {}); // if it fails, the lookup fails too and reports it
  const [prior] = await lookup;
  await lock;
  return prior;
}

/** The applied delivery this one repeats, for a webhook that sets `entity` (a listing, event,
 * broker or order): the entity's latest applied delivery, when it has the same bytes and version
 * and is at most 24 h old. An equal body with another change of the entity in between is not a
 * retry (6 -> 9 -> 6 ends at 6). The advisory lock on the entity makes its webhooks take turns
 * from here to their commit, on any number of dynos: two copies arriving at once apply once, and
 * the latest delivery recorded is the one applied last. */
export function findRetryOfEntity(
  tx: Tx,
  entity: string,
  bodySha256: Buffer,
  version: string,
): Promise<PriorDelivery | undefined> {
  return lockedLookup(tx, tx`hashtextextended(${entity}, 0)`, entityRetryLookup(tx, entity, bodySha256, version));
}

/** The lookup of findRetryOfEntity: two primary-key lookups. Exported for the test that checks the plan. */
export function entityRetryLookup(tx: Tx | Sql, entity: string, bodySha256: Buffer, version: string) {
  return tx<PriorDelivery[]>`
    select d.id, d.status, d.reply, d.listing_id, d.event_id, d.order_id, d.broker_id
      from delivery_entities e join deliveries d on d.id = e.delivery_id
     where e.entity = ${entity} and d.body_sha256 = ${bodySha256} and d.version = ${version}
       and d.received_at > now() - interval '24 hours'`;
}

/** The applied delivery this one repeats, for a webhook whose entity is known only once applied
 * (ticket.add: the listing it created): the latest applied delivery with the same bytes and
 * version within 24 h, if it is still the latest applied delivery of the entity it set. After a
 * change of that listing (an update, a delete) the same ticket.add is a new listing. Without an
 * entity (fulfilments, which add a ticket to an order) the same bytes are a retry. The advisory
 * lock on the body's hash makes two copies arriving at once on two dynos take turns, so the
 * second one finds the first instead of applying again. */
export function findRetryOfBody(tx: Tx, bodySha256: Buffer, version: string): Promise<PriorDelivery | undefined> {
  return lockedLookup(tx, tx`${bodySha256.readBigInt64BE(0).toString()}::bigint`, retryLookup(tx, bodySha256, version));
}

/** The lookup of findRetryOfBody. Ordered by received_at, the order of deliveries_retry_idx: ordered
 * by id, PostgreSQL's generic plan for this prepared statement (used after five executions)
 * walked the primary key backwards through every delivery instead, slower with every delivery
 * logged. Exported for the test that checks the plan. */
export function retryLookup(tx: Tx | Sql, bodySha256: Buffer, version: string) {
  return tx<PriorDelivery[]>`
    select id, status, reply, listing_id, event_id, order_id, broker_id
      from (select id, status, reply, listing_id, event_id, order_id, broker_id, entity
              from deliveries
             where body_sha256 = ${bodySha256} and version = ${version} and outcome = 'applied'
               and type not in ('ticket.hold', 'ticket.release') -- the index's condition (sql/0012): deltas are not retried
               and received_at > now() - interval '24 hours'
             order by received_at desc
             limit 1) prior
     where prior.entity is null
        or exists (select 1 from delivery_entities e where e.entity = prior.entity and e.delivery_id = prior.id)`;
}

/** A delivery is replayed at most once: a second replay of it, even one running at the same time
 * on another dyno, fails on this unique index (sql/0004) and nothing of it is applied. */
export const isAlreadyReplayed = (err: unknown) => {
  const e = err as { code?: unknown; constraint_name?: unknown } | null;
  return e?.code === '23505' && e.constraint_name === 'deliveries_replay_once_idx';
};

/** The replay of delivery `id`, if it was replayed. */
export async function replayOf(sql: Sql, id: string): Promise<string | undefined> {
  const [row] = await sql<{ id: string }[]>`select id from deliveries where replay_of = ${id} and not replay_repeated`;
  return row?.id;
}

export interface DroppedBodies {
  /** The highest delivery id looked at: every delivery up to it was received before the cutoff. */
  upTo: string;
  rows: number;
  bytes: number;
  /** No delivery after upTo was received before the cutoff (or there is none). */
  done: boolean;
}

/** One batch of retention: drops the bodies of the deliveries after id `after` received before
 * `cutoff`, in id order, at most `maxRows` of them and about `maxBytes` of bodies (at least
 * one), stopping at the first delivery received since. The row, its outcome and reply stay. Only
 * the rows whose bodies are dropped are locked, for the one statement that drops them. */
export async function dropOldBodies(
  tx: Tx,
  after: string,
  cutoff: Date,
  maxRows: number,
  maxBytes: number,
): Promise<DroppedBodies> {
  const scanned = await tx<{ id: string; old: boolean; bytes: number | null }[]>`
    select id, received_at < ${cutoff} as old, octet_length(body) as bytes
      from deliveries where id > ${after} order by id limit ${maxRows}`;
  let upTo = after;
  let bytes = 0;
  let done = scanned.length < maxRows;
  const ids: string[] = [];
  for (const row of scanned) {
    if (!row.old || (ids.length > 0 && bytes + (row.bytes ?? 0) > maxBytes)) {
      done = !row.old;
      break;
    }
    if (row.bytes !== null) ids.push(row.id);
    bytes += row.bytes ?? 0;
    upTo = row.id;
  }
  if (ids.length === 0) return { upTo, rows: 0, bytes: 0, done };
  const [dropped] = await tx<{ rows: number; bytes: string }[]>`
    with old as (
      select id, octet_length(body) as bytes from deliveries
       where id = any(${tx.array(ids)}::int8[]) and body is not null
         for no key update
    ), dropped as (
      update deliveries d set body = null, body_bytes = coalesce(d.body_bytes, old.bytes), body_dropped_at = now()
        from old where d.id = old.id
      returning old.bytes
    )
    select count(*)::int as rows, coalesce(sum(bytes), 0)::text as bytes from dropped`;
  return { upTo, rows: dropped!.rows, bytes: Number(dropped!.bytes), done };
}

export interface DeliveryFilter {
  type?: string;
  outcome?: string;
  limit: number;
  after?: string;
}

const SUMMARY = [
  'id',
  'received_at',
  'version',
  'type',
  'path',
  'outcome',
  'status',
  'reply',
  'error',
  'duplicate_of',
  'replay_of',
  'listing_id',
  'event_id',
  'order_id',
  'broker_id',
  'redacted',
  'body_dropped_at',
] as const;

/** `bytes`: the body's size as received; `stored_bytes`: what the log holds of it now (less when
 * its file is a ticket reference, null once retention dropped it). */
const sizes = (sql: Sql) => sql`coalesce(body_bytes, octet_length(body)) as bytes, octet_length(body) as stored_bytes`;

export async function listDeliveries(sql: Sql, f: DeliveryFilter) {
  return sql`
    select ${sql(SUMMARY as unknown as string[])}, ${sizes(sql)}
      from deliveries ${pageWhere(sql, { type: f.type, outcome: f.outcome }, f)}`;
}

export interface StoredBody {
  order_id: string | null;
  body: Buffer | null;
  body_file: BodyFile | null;
  body_sha256: string;
  body_dropped_at: Date | null;
}

export async function getDelivery(sql: Sql, id: string) {
  const [row] = await sql<(Record<string, unknown> & StoredBody)[]>`
    select ${sql(SUMMARY as unknown as string[])}, headers, body, body_file, encode(body_sha256, 'hex') as body_sha256, ${sizes(sql)}
      from deliveries where id = ${id}`;
  return row;
}

/** A stored delivery's body as it was received: the stored bytes, or, when its file is a
 * ticket reference, rebuilt from the stored PDF (and checked against body_sha256). A string
 * says why it cannot be had. */
export async function receivedBody(sql: Sql, row: StoredBody): Promise<{ raw: Buffer; fromTicket: string | null } | string> {
  if (!row.body)
    return `its body was dropped on ${row.body_dropped_at?.toISOString() ?? '?'} (DELIVERY_BODY_RETENTION); the row, outcome and reply are kept`;
  if (!row.body_file) return { raw: row.body, fromTicket: null };
  const ticket = await pdfBySha256(sql, row.body_file.sha256, row.order_id);
  if (!ticket) return `the ticket PDF its body refers to (sha256 ${row.body_file.sha256}) is not stored`;
  const raw = rebuiltBody(row.body, row.body_file, ticket.pdf);
  if (typeof raw === 'string') return raw;
  if (createHash('sha256').update(raw).digest('hex') !== row.body_sha256)
    return 'the body rebuilt from its ticket PDF differs from the one received';
  return { raw, fromTicket: ticket.id };
}
