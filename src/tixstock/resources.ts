// Building blocks for Tixstock's loosely typed JSON. Tixstock's PHP sender writes booleans as
// "true"/"false", 1/0 or real booleans, money and seat numbers as strings or numbers, and adds
// optional fields within a version: every object here keeps fields it does not name.
import { z } from 'zod';
import { idProblem } from '../ids.js';
import { amount, money } from '../money.js';

/** Largest quantity we accept; far above any real listing, low enough to rule out nonsense. */
export const MAX_QUANTITY = 100_000;

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no', '']);

export const looseBoolean = z.union([z.boolean(), z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  ctx.addIssue({ code: 'custom', message: `expected a boolean ("true"/"false", 1/0), got ${JSON.stringify(v)}` });
  return z.NEVER;
});

/** An id that may arrive as a string or an integer; kept as a string (ids.ts says which are ids). */
export const looseId = z.union([z.string(), z.number().int().nonnegative()]).transform((v, ctx) => {
  const id = String(v).trim();
  const problem = idProblem(id);
  if (problem) {
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  return id;
});

/** A whole number of tickets, as a number or a numeric string. */
export function count(min = 0) {
  return z
    .union([
      z.number(),
      z
        .string()
        .trim()
        .regex(/^-?\d+$/, 'must be a whole number'),
    ])
    .transform((v) => Number(v))
    .pipe(
      z
        .number()
        .int('must be a whole number')
        .min(min, `must be at least ${min}`)
        .max(MAX_QUANTITY, `must be at most ${MAX_QUANTITY}`),
    );
}

/** A seat number: "21", 21, or absent. */
export const seat = z
  .union([z.string(), z.number().int(), z.null()])
  .transform((v) => (v === null ? null : String(v).trim()))
  .pipe(z.string().max(50).nullable());

export const venue = z.looseObject({ name: z.string().optional() });

export const eventResource = z.looseObject({
  id: looseId,
  name: z.string().trim().min(1, 'must not be empty'),
  currency: z.string().optional(),
  description: z.string().nullish(),
  datetime: z.string().nullish(),
  status: z.string().nullish(),
  venue: venue.nullish(),
  performers: z.array(z.unknown()).nullish(),
});
export type EventResource = z.infer<typeof eventResource>;

export const listingResource = z.looseObject({
  id: z.union([looseId, z.null()]).optional(),
  broker_id: looseId,
  ticket: z
    .looseObject({
      general_admission: looseBoolean.optional(),
      type: z.string().nullish(),
      split_type: z.string().nullish(),
    })
    .optional(),
  number_of_tickets_for_sale: z.looseObject({
    quantity_available: count(0),
    quantity_sold: count(0).optional(),
    display_quantity: count(0).optional(),
    split_quantity: count(0).optional(),
  }),
  seat_details: z
    .looseObject({
      category: z.string().nullish(),
      section: z.string().nullish(),
      row: z.union([z.string(), z.number()]).nullish(),
      first_seat: seat.optional(),
    })
    .optional(),
  face_value: money.nullish(),
  display_price: money,
  proceed_price: money.nullish(),
  event: eventResource,
  published: looseBoolean.optional(),
});
export type ListingResource = z.infer<typeof listingResource>;

/** Text that may arrive as a number, kept as a string; `blankIsNull`: trimmed, and "" is null. */
export const looseText = (blankIsNull = false) =>
  z
    .union([z.string(), z.number()])
    .transform((v) => (blankIsNull ? String(v).trim() || null : String(v)))
    .nullish();

/** Tixstock's order resource. Only `id` is required: ticket.sold may carry a partial copy. */
export const orderResource = z.looseObject({
  id: looseId,
  date: z.string().nullish(),
  customer: z
    .looseObject({
      id: looseText(),
      first_name: z.string().nullish(),
      last_name: z.string().nullish(),
      email_address: z.string().nullish(),
    })
    .nullish(),
  items: z.array(z.looseObject({ listing_id: looseText() })).nullish(),
  quantity: count(0).nullish(),
  currency: z.string().trim().max(10).nullish(),
  sub_total: amount.nullish(),
  grand_total: amount.nullish(),
  status: z.string().trim().max(100).nullish(),
  shipping_tracking_id: looseText(),
  shipping_label: z.string().nullish(),
});
export type OrderResource = z.infer<typeof orderResource>;
