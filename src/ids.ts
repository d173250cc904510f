import { z } from 'zod';

// One rule for the ids people read and type (order ids above all: support looks them up, links
// and mail carry them), the same for webhooks, /api and /support: 1 to 100 characters, no
// control characters (CR and LF among them) and no bidirectional controls, which make an id
// display as another one.
const UNSAFE_IN_ID = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

export const MAX_ID_LENGTH = 100;

/** What is wrong with an id, or undefined when it is one. */
export function idProblem(id: string): string | undefined {
  if (id.length === 0) return 'must not be empty';
  if (id.length > MAX_ID_LENGTH) return 'is too long';
  if (UNSAFE_IN_ID.test(id)) return 'must not contain control characters (such as CR or LF) or bidirectional controls';
  return undefined;
}

export const isId = (id: string): boolean => idProblem(id) === undefined;

/** Said where an id is refused. */
export const ID_RULE = `1 to ${MAX_ID_LENGTH} characters, without control characters (such as CR or LF) or bidirectional controls`;

/** Our own ids (listings, deliveries, holds, runs) are PostgreSQL bigints, as decimal strings. */
/** Our own ids (listings, tickets, holds, deliveries, jobs, runs: bigserial) are decimal integers;
 * anything else names no row of ours, and never reaches SQL's ::bigint. */
export const isSerialId = (id: string): boolean => /^[1-9]\d{0,17}$/.test(id);

/** A numeric id or cursor as typed in a URL (leading zeros allowed, as PostgreSQL's bigint reads them). */
const NUMERIC_ID = /^\d{1,18}$/;
export const isNumericId = (id: string): boolean => NUMERIC_ID.test(id);
export const numericId = (what = 'a numeric id') => z.string().regex(NUMERIC_ID, `must be ${what}`);
