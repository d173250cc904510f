// The JSON the /api routes answer, as zod schemas: the OpenAPI document is made from them and a
// test checks real replies against it. PostgreSQL's bigint ids and numerics are strings (as
// postgres.js reads them), times are ISO 8601 in UTC.
import { z } from 'zod';

const id = z.string().regex(/^\d+$/);
const time = z.iso.datetime();
/** A JSON value stored as Tixstock sent it. */
const asSent = z.unknown();
const resource = z.record(z.string(), z.unknown());
export const money = z.object({ currency: z.string(), amount: z.string() });

/** Outcomes that are not a webhook applied (or answered from the log): what support looks at. */
export const ERROR_OUTCOMES = ['rejected', 'invalid', 'unsupported', 'failed'] as const;
/** A webhook's outcome, as its delivery log row keeps it. */
export const OUTCOMES = ['applied', 'duplicate', ...ERROR_OUTCOMES] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const listingSummary = z.object({
  id,
  event_id: z.string(),
  broker_id: z.string(),
  status: z.enum(['published', 'deleted']),
  quantity: z.number().int().min(0),
  first_seat: z.string().nullable(),
  display_price: money.describe("ours: Tixstock's estimate with DISPLAY_PRICE_MARKUP_PERCENT"),
  proceed_price: asSent,
  face_value: asSent,
  seat_details: asSent,
  ticket: asSent,
  created_at: time,
  updated_at: time,
  deleted_at: time.nullable(),
});

export const listing = listingSummary.extend({
  tixstock_display_price: money,
  quantity_ceiling: z.number().int().min(0).describe('the most a release can bring the quantity back to'),
  data: resource.describe('the whole listing resource as last received'),
});

export const quantityChange = z.object({
  id,
  delivery_id: id.nullable(),
  hold_id: id.nullable().describe('our own hold (POST /api/holds) that made the change'),
  reconciliation_id: id.nullable().describe('the reconciliation that repaired the quantity'),
  reason: z.string().describe('the webhook type, or our.hold/our.release/... for our own sales'),
  requested: z.number().int().nullable(),
  before: z.number().int().nullable().describe('null when the listing was created'),
  after: z.number().int(),
  short: z.boolean().describe('a ticket.hold or ticket.release that moved fewer tickets than it asked for'),
  at: time,
  possible_echo_of_hold: id.nullable().describe('a ticket.hold that may be Tixstock telling us of our own hold'),
});

export const eventSummary = z.object({
  id: z.string(),
  name: z.string(),
  datetime: z.string().nullable().describe('as Tixstock sent it, e.g. 2027-03-14T19:30:00+0000'),
  status: z.string().nullable(),
  cancelled: z.boolean(),
  venue: asSent,
  created_at: time,
  updated_at: time,
});

export const eventWithListings = eventSummary.extend({
  data: resource.describe('the whole event resource as last received'),
  listings: z.array(listingSummary),
});

export const deliverySummary = z.object({
  id,
  received_at: time,
  version: z.string(),
  type: z.string().nullable(),
  path: z.string(),
  outcome: z.enum(OUTCOMES),
  status: z.number().int(),
  reply: asSent.describe('the JSON answered to Tixstock'),
  error: z.string().nullable(),
  duplicate_of: id.nullable(),
  replay_of: id.nullable(),
  listing_id: id.nullable(),
  event_id: z.string().nullable(),
  order_id: z.string().nullable(),
  broker_id: z.string().nullable(),
  redacted: z.boolean(),
  body_dropped_at: time.nullable().describe('when retention (DELIVERY_BODY_RETENTION) dropped the body'),
  bytes: z.number().int().describe("the body's size as received"),
  stored_bytes: z
    .number()
    .int()
    .nullable()
    .describe('what the log holds of the body now: less when its PDF is a ticket reference, null once dropped'),
});

export const delivery = deliverySummary.extend({
  headers: z.record(z.string(), z.string()),
  body_sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .describe('of the body as received'),
  body_file: z
    .object({
      at: z.number().int().describe("offset of the reference's opening quote in the stored body"),
      length: z.number().int().describe('bytes between the quotes of the string it replaced'),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .describe("the stored ticket PDF's"),
      slashes: z.enum(['plain', 'escaped']),
    })
    .nullable()
    .describe('the stored body holds a reference to a ticket PDF instead of its base64'),
  body: z
    .string()
    .nullable()
    .describe('the body as stored, up to 1 MB: null beyond (with body_truncated) and once dropped (body_dropped_at)'),
  body_truncated: z.literal(true).optional(),
});

export const replayResult = z.object({
  id,
  replay_of: id,
  type: z.string().nullable(),
  version: z.string(),
  outcome: z.enum(OUTCOMES),
  status: z.number().int(),
  reply: asSent,
  body_rebuilt_from_ticket: id
    .nullable()
    .describe('the ticket whose stored PDF the body was rebuilt from (its file was a reference), else null'),
});

export const broker = z.object({ id: z.string(), username: z.string(), created_at: time });

export const ticket = z.object({
  id,
  listing_id: z.string().nullable(),
  row: z.string().nullable(),
  seat: z.string().nullable(),
  bytes: z.number().int(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  pages: z.number().int(),
  received_at: time,
  kind: z.enum(['eticket', 'mobile']),
  general_admission: z.boolean().nullable(),
});

export const order = z.object({
  id: z.string(),
  status: z.string().nullable().describe("Tixstock's"),
  order_status: z.string().nullable().describe("ours when set, otherwise Tixstock's"),
  reseller_status: z.string().nullable(),
  date: z.string().nullable(),
  customer: asSent,
  customer_email: z.string().nullable(),
  customer_name: z.string().nullable(),
  items: asSent,
  quantity: z.number().int().nullable(),
  currency: z.string().nullable(),
  sub_total: z.string().nullable(),
  grand_total: z.string().nullable(),
  shipping_tracking_id: z.string().nullable(),
  shipping_label: z.string().nullable(),
  hold_id: id.nullable().describe('our hold, for orders sold through POST /api/holds/:id/order'),
  created_at: time,
  updated_at: time,
  tickets: z.array(ticket).describe('in seat order'),
  proof_file_urls: z.array(z.string()),
  tixstock_sync: z
    .object({
      status: z.enum(['pending', 'done', 'failed']),
      last_error: z.string().nullable(),
      attempts: z.number().int(),
      job_id: id.nullable(),
      updated_at: time.nullable(),
    })
    .nullable()
    .describe('orders sold through us: whether our status has reached Tixstock'),
});

export const hold = z.object({
  id,
  tixstock_hold_id: z.string().nullable(),
  listing_id: id,
  quantity: z.number().int().min(0).describe('tickets held now'),
  status: z.enum(['pending', 'active', 'released', 'ordered', 'expired', 'failed']),
  expires_at: time,
  order_id: z.string().nullable(),
  created_at: time,
  updated_at: time,
  requested: z.number().int(),
  sold_quantity: z.number().int(),
  last_error: z.string().nullable(),
});

export const holdOrdered = hold.extend({
  order: z.object({ id: z.string(), order_status: z.string(), quantity: z.number().int() }),
});

export const brokerClosed = z.object({
  broker_id: z.string(),
  closed_at: time,
  tixstock_sync: z.object({ status: z.literal('pending'), job_id: id }).describe('the close is sent to Tixstock by a job'),
});

const byteCount = z.number().min(0);

export const storageStats = z.object({
  database: z.object({
    bytes: byteCount,
    limit_bytes: byteCount.nullable().describe('DATABASE_SIZE_LIMIT'),
    used_percent: z.number().nullable(),
    warning: z.boolean().describe('80% of the limit or more'),
  }),
  tables: z
    .array(
      z.object({
        name: z.string(),
        total_bytes: byteCount,
        table_bytes: byteCount,
        toast_bytes: byteCount,
        index_bytes: byteCount,
        rows_estimate: z.number().describe("PostgreSQL's estimate; -1 before the first VACUUM or ANALYZE"),
      }),
    )
    .describe('the largest, biggest first'),
  retention: z.object({
    body_retention: z.string().describe('DELIVERY_BODY_RETENTION, e.g. 30d; 0 keeps bodies'),
    body_retention_ms: z.number().int(),
    last_run: z
      .object({
        id,
        started_at: time,
        finished_at: time.nullable(),
        cutoff: time.nullable(),
        rows: z.number().int(),
        bytes: byteCount,
        batches: z.number().int(),
        database_bytes: byteCount.nullable(),
      })
      .nullable(),
    runs: z.number().int(),
    rows: z.number(),
    bytes: byteCount,
  }),
});

/** A reply's row as postgres.js reads it from the database: its times (`*_at`) are Dates. */
export type AsRead<T> = { [K in keyof T]: K extends `${string}_at` ? (null extends T[K] ? Date | null : Date) : T[K] };

export const reconciliation = z.object({
  id,
  status: z.enum(['running', 'done', 'failed']),
  repair: z.boolean(),
  requested_by: z.string().describe('api, cli or schedule'),
  started_at: time,
  finished_at: time.nullable(),
  pages: z.number().int(),
  listings_checked: z.number().int(),
  without_id: z.number().int().describe('listings without an id at Tixstock yet: counted only'),
  imported: z.number().int(),
  difference_count: z.number().int(),
  error: z.string().nullable().describe('why a failed run failed'),
});

export const reconciliationWithDifferences = reconciliation.extend({
  differences: z
    .array(
      z.object({
        listing_id: z.string(),
        field: z.string().describe("a listing field, or listing (one side lacks it) or resource (Tixstock's is unreadable)"),
        ours: asSent,
        tixstock: asSent,
        action: z.enum(['reported', 'repaired', 'imported', 'skipped']),
        note: z.string().nullable(),
      }),
    )
    .describe('the first 5000, in the order found'),
});
