// Events: our copy of Tixstock's events. Written by event.update, event.cancel and (for the
// event a new listing belongs to) ticket.add / ticket.update.
import { pageWhere, type Sql, type Tx } from '../db/connect.js';

/** An event as Tixstock sends it (webhooks, tickets/get): these fields get columns, all of it is kept in `data`. */
export interface EventInput {
  id: string;
  name: string;
  datetime?: string | null;
  status?: string | null;
  venue?: object | null;
}

const isCancelledStatus = (status: string | null | undefined) => /^cancel/i.test(status ?? '');

/** Creates or refreshes an event. `cancelled` is sticky: once cancelled an event stays so. */
export async function upsertEvent(tx: Tx, e: EventInput): Promise<{ cancelled: boolean }> {
  const [row] = await tx<{ cancelled: boolean }[]>`
    insert into events (id, name, datetime, status, cancelled, venue, data)
    values (${e.id}, ${e.name}, ${e.datetime ?? null}, ${e.status ?? null}, ${isCancelledStatus(e.status)},
            ${e.venue ? tx.json(e.venue as never) : null}, ${tx.json(e as never)})
    on conflict (id) do update
       set name = excluded.name, datetime = excluded.datetime, status = excluded.status,
           cancelled = events.cancelled or excluded.cancelled, venue = excluded.venue,
           data = excluded.data, updated_at = now()
    returning cancelled`;
  return row!;
}

/** Marks an event cancelled (creating it if unknown). Returns whether it was known before. */
export async function cancelEvent(tx: Tx, e: EventInput): Promise<{ found: boolean }> {
  const [row] = await tx<{ found: boolean }[]>`
    insert into events (id, name, datetime, status, cancelled, venue, data)
    values (${e.id}, ${e.name}, ${e.datetime ?? null}, ${e.status ?? 'Cancelled'}, true,
            ${e.venue ? tx.json(e.venue as never) : null}, ${tx.json(e as never)})
    on conflict (id) do update
       set status = excluded.status, cancelled = true, data = excluded.data, updated_at = now()
    returning (xmax <> 0) as found`;
  return row!;
}

export async function getEvent(sql: Sql, id: string) {
  const [row] = await sql`
    select id, name, datetime, status, cancelled, venue, data, created_at, updated_at from events where id = ${id}`;
  return row;
}

export async function listEvents(sql: Sql, f: { limit: number; after?: string; status?: string }) {
  return sql`
    select id, name, datetime, status, cancelled, venue, created_at, updated_at
      from events ${pageWhere(sql, { status: f.status }, f)}`;
}
