// Ticket PDFs and proof URLs attached to orders by the fulfilment webhooks. PDFs are kept in
// PostgreSQL byte for byte (a dyno's disk does not survive a restart).
import type { Sql, Tx } from '../db/connect.js';
import { isSerialId } from '../ids.js';
import { copyRowReturningId, type CopyColumns } from '../db/copy.js';
import type { CheckedPdf } from './check.js';

export interface NewTicket extends CheckedPdf {
  orderId: string;
  deliveryId: string;
  kind: 'eticket' | 'mobile';
  listingId: string | null;
  generalAdmission: boolean | null;
  row: string | null;
  seat: string | null;
}

const TICKET_COLUMNS: CopyColumns = {
  order_id: 'text',
  delivery_id: 'int8',
  kind: 'text',
  listing_id: 'text',
  general_admission: 'bool',
  row: 'text',
  seat: 'text',
  pdf: 'bytea',
  sha256: 'text',
  bytes: 'int4',
  pages: 'int4',
};

/** Stores a ticket PDF. The same PDF for the same order is stored once: the id of the copy
 * already stored is returned with `created: false`. */
export async function attachTicket(tx: Tx, t: NewTicket): Promise<{ id: string; created: boolean }> {
  // Two webhooks bringing the same PDF for the same order take turns here, so the second finds
  // the first's row instead of failing on the unique key.
  await tx`select pg_advisory_xact_lock(hashtextextended(${`ticket ${t.orderId} ${t.sha256}`}, 0))`;
  const [existing] = await tx<{ id: string }[]>`select id from tickets where order_id = ${t.orderId} and sha256 = ${t.sha256}`;
  if (existing) return { id: existing.id, created: false };
  // Written with COPY (db/copy.ts): tens of MB as bytes, in slices, not as one hex parameter.
  const id = await copyRowReturningId(tx, 'tickets', TICKET_COLUMNS, {
    order_id: t.orderId,
    delivery_id: t.deliveryId,
    kind: t.kind,
    listing_id: t.listingId,
    general_admission: t.generalAdmission,
    row: t.row,
    seat: t.seat,
    pdf: t.pdf,
    sha256: t.sha256,
    bytes: t.bytes,
    pages: t.pages,
  });
  return { id, created: true };
}

export async function attachProofUrls(
  tx: Tx,
  p: {
    orderId: string;
    deliveryId: string;
    urls: string[];
    listingId: string | null;
    row: string | null;
    seat: string | null;
  },
): Promise<number> {
  if (p.urls.length === 0) return 0;
  const rows = p.urls.map((url) => ({
    order_id: p.orderId,
    url,
    delivery_id: p.deliveryId,
    listing_id: p.listingId,
    row: p.row,
    seat: p.seat,
  }));
  const added = await tx`insert into order_proof_urls ${tx(rows)} on conflict (order_id, url) do nothing returning url`;
  return added.length;
}

export interface TicketInfo {
  id: string;
  order_id: string;
  kind: 'eticket' | 'mobile';
  listing_id: string | null;
  general_admission: boolean | null;
  row: string | null;
  seat: string | null;
  bytes: number;
  sha256: string;
  pages: number;
  received_at: Date;
}

export const isTicketId = isSerialId;

/** Where a ticket sits, as far as it says: ['row F', 'seat 21'], ['seat 21'] or []. */
export const seatOf = (t: Pick<TicketInfo, 'row' | 'seat'>): string[] =>
  [t.row && `row ${t.row}`, t.seat && `seat ${t.seat}`].filter((part): part is string => Boolean(part));

const seatCollator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Seat order: row, then seat, numbers compared as numbers ("F 9" before "F 10"). */
export function bySeat(a: Pick<TicketInfo, 'row' | 'seat' | 'id'>, b: Pick<TicketInfo, 'row' | 'seat' | 'id'>): number {
  return (
    seatCollator.compare(a.row ?? '', b.row ?? '') ||
    seatCollator.compare(a.seat ?? '', b.seat ?? '') ||
    Number(BigInt(a.id) - BigInt(b.id))
  );
}

/** The columns of TicketInfo (everything but the bytes). */
const TICKET_INFO = [
  'id',
  'order_id',
  'kind',
  'listing_id',
  'general_admission',
  'row',
  'seat',
  'bytes',
  'sha256',
  'pages',
  'received_at',
];

/** An order's tickets (no bytes), in seat order. */
export async function ticketsOfOrder(sql: Sql, orderId: string): Promise<TicketInfo[]> {
  const rows = await sql<TicketInfo[]>`select ${sql(TICKET_INFO)} from tickets where order_id = ${orderId}`;
  return [...rows].sort(bySeat);
}

/** One ticket (no bytes). */
export async function ticketInfo(sql: Sql, id: string): Promise<TicketInfo | undefined> {
  if (!isTicketId(id)) return undefined;
  const [row] = await sql<TicketInfo[]>`select ${sql(TICKET_INFO)} from tickets where id = ${id}`;
  return row;
}

export async function ticketPdf(sql: Sql, id: string): Promise<(TicketInfo & { pdf: Buffer }) | undefined> {
  if (!isTicketId(id)) return undefined;
  const [row] = await sql<(TicketInfo & { pdf: Buffer })[]>`select ${sql(TICKET_INFO)}, pdf from tickets where id = ${id}`;
  return row;
}

/** Whether a PDF with this sha256 is stored (for any order: the bytes are the same). */
export async function isPdfStored(db: Sql | Tx, sha256: string): Promise<boolean> {
  const [row] = await db<{ stored: boolean }[]>`select exists (select 1 from tickets where sha256 = ${sha256}) as stored`;
  return row!.stored;
}

/** A stored PDF found by its sha256: the order's ticket if it has one, else the oldest. */
export async function pdfBySha256(
  sql: Sql,
  sha256: string,
  orderId: string | null,
): Promise<{ id: string; pdf: Buffer } | undefined> {
  const [row] = await sql<{ id: string; pdf: Buffer }[]>`
    select id, pdf from tickets where sha256 = ${sha256} order by order_id is not distinct from ${orderId} desc, id limit 1`;
  return row;
}

/** An order's PDFs with their bytes, in seat order. */
export async function ticketPdfsOfOrder(sql: Sql, orderId: string): Promise<(TicketInfo & { pdf: Buffer })[]> {
  const rows = await sql<
    (TicketInfo & { pdf: Buffer })[]
  >`select ${sql(TICKET_INFO)}, pdf from tickets where order_id = ${orderId}`;
  return [...rows].sort(bySeat);
}

export async function proofUrlsOfOrder(sql: Sql, orderId: string): Promise<string[]> {
  const rows = await sql<{ url: string }[]>`
    select url from order_proof_urls where order_id = ${orderId} order by received_at, url`;
  return rows.map((r) => r.url);
}

/** The latest tickets received, for the support page. */
export async function recentTickets(sql: Sql, limit = 20): Promise<TicketInfo[]> {
  return sql<TicketInfo[]>`select ${sql(TICKET_INFO)} from tickets order by received_at desc, id desc limit ${limit}`;
}
