// What the support page's front shows besides search: fulfilment webhooks that were refused
// (bad file, empty e-ticket, invalid body). Read-only over the delivery log.
import type { Sql } from '../db/connect.js';
import { isSerialId } from '../ids.js';
import { ERROR_OUTCOMES } from '../replies.js';

export interface RefusedFulfilment {
  id: string;
  received_at: Date;
  type: string;
  outcome: string;
  order_id: string | null;
  message: string | null;
}

export async function refusedFulfilments(sql: Sql, limit = 20): Promise<RefusedFulfilment[]> {
  return sql<RefusedFulfilment[]>`
    select id, received_at, type, outcome, order_id, coalesce(reply->>'message', error) as message
      from deliveries
     where type in ('order.eticket_fulfilment', 'order.mobile_ticket_fulfilment')
       and outcome in ('rejected', 'invalid', 'failed')
     order by id desc
     limit ${limit}`;
}

export interface DeliveryFilter {
  type?: string;
  outcome?: string;
  /** YYYY-MM-DD (UTC), within the last 7 days */
  day?: string;
}

export interface DeliveryDay {
  day: string;
  total: number;
  errors: number;
}

export interface DeliveryRow {
  id: string;
  received_at: Date;
  type: string | null;
  version: string;
  outcome: string;
  status: number;
  message: string | null;
  bytes: number;
}

/** Bodies longer than this are shown cut (the rest is in GET /api/deliveries/:id). */
export const SHOWN_BODY_BYTES = 64 * 1024;

export interface DeliveryDetail extends DeliveryRow {
  path: string;
  headers: Record<string, string>;
  body_start: Buffer;
  redacted: boolean;
  reply: unknown;
  error: string | null;
  duplicate_of: string | null;
  replay_of: string | null;
  listing_id: string | null;
  event_id: string | null;
  order_id: string | null;
  broker_id: string | null;
}

const LAST_WEEK = (sql: Sql) => sql`received_at > now() - interval '7 days'`;

function filters(sql: Sql, f: DeliveryFilter) {
  return sql`
    ${f.type ? sql`and type = ${f.type}` : sql``}
    ${f.outcome ? sql`and outcome = ${f.outcome}` : sql``}`;
}

const MESSAGE = "coalesce(error, reply->>'message')";

/** The last 7 days (UTC), newest first, with how many deliveries were not applied. */
export async function deliveryDays(sql: Sql, f: DeliveryFilter): Promise<DeliveryDay[]> {
  return sql<DeliveryDay[]>`
    select to_char(received_at at time zone 'UTC', 'YYYY-MM-DD') as day, count(*)::int as total,
           count(*) filter (where outcome in ${sql(ERROR_OUTCOMES)})::int as errors
      from deliveries
     where ${LAST_WEEK(sql)} ${filters(sql, f)}
     group by 1 order by 1 desc`;
}

/** Deliveries of the last 7 days (or of one day), newest first. */
export async function recentDeliveries(sql: Sql, f: DeliveryFilter, limit = 200): Promise<DeliveryRow[]> {
  return sql<DeliveryRow[]>`
    select id, received_at, type, version, outcome, status, ${sql.unsafe(MESSAGE)} as message, octet_length(body) as bytes
      from deliveries
     where ${LAST_WEEK(sql)} ${filters(sql, f)}
       ${f.day ? sql`and to_char(received_at at time zone 'UTC', 'YYYY-MM-DD') = ${f.day}` : sql``}
     order by id desc
     limit ${limit}`;
}

/** The latest delivery that was not applied, of the last 7 days. */
export async function lastError(sql: Sql): Promise<DeliveryRow | undefined> {
  const [row] = await sql<DeliveryRow[]>`
    select id, received_at, type, version, outcome, status, ${sql.unsafe(MESSAGE)} as message, octet_length(body) as bytes
      from deliveries
     where ${LAST_WEEK(sql)} and outcome in ${sql(ERROR_OUTCOMES)}
     order by id desc
     limit 1`;
  return row;
}

/** The webhook types seen in the last 7 days, for the filter. */
export async function deliveryTypes(sql: Sql): Promise<string[]> {
  const rows = await sql<{ type: string }[]>`
    select distinct type from deliveries where ${LAST_WEEK(sql)} and type is not null order by type`;
  return rows.map((r) => r.type);
}

/** One delivery with its headers, reply and the start of its body. */
export async function deliveryDetail(sql: Sql, id: string): Promise<DeliveryDetail | undefined> {
  if (!isSerialId(id)) return undefined;
  const [row] = await sql<DeliveryDetail[]>`
    select id, received_at, type, version, outcome, status, ${sql.unsafe(MESSAGE)} as message, octet_length(body) as bytes,
           path, headers, substring(body from 1 for ${SHOWN_BODY_BYTES}) as body_start, redacted, reply, error,
           duplicate_of, replay_of, listing_id, event_id, order_id, broker_id
      from deliveries where id = ${id}`;
  return row;
}
