// Idempotency-Key for the sales calls that create something (a hold, an order). The key's row
// is inserted in the same transaction as the reservation, before Tixstock is called, so the
// database decides which of two concurrent requests with one key calls Tixstock: the second
// waits only for the first one's short transaction (the unique key), then finds the row in
// progress and is answered 409 at once; it never waits for Tixstock. A finished request's
// answer is stored and given again for 24 hours.
import { createHash } from 'node:crypto';
import type { Fragment, Sql, Tx } from '../db/connect.js';

export const KEY_TTL_HOURS = 24;

export interface IdempotencyKey {
  scope: string;
  key: string;
  requestSha256: string;
}

export interface StoredAnswer {
  status: number;
  body: unknown;
}

export type KeyState =
  | { kind: 'new'; holdId: string | null }
  | { kind: 'answered'; answer: StoredAnswer }
  | { kind: 'in_progress'; holdId: string | null }
  | { kind: 'other_request' };

/** The key of a request, or undefined without the header. Keys are 1 to 200 printable characters. */
export function idempotencyKey(
  header: string | undefined,
  scope: string,
  input: unknown,
): IdempotencyKey | undefined | 'invalid' {
  if (header === undefined) return undefined;
  if (header.length < 1 || header.length > 200 || /[^\x21-\x7e]/.test(header)) return 'invalid';
  return { scope, key: header, requestSha256: createHash('sha256').update(JSON.stringify(input)).digest('hex') };
}

/** Claims the key for this request, linked to `holdId` (the hold it makes or uses), or says what
 * became of the request that claimed it first. A key older than 24 hours is taken over as new. */
export async function claimKey(tx: Tx, k: IdempotencyKey, holdId: Fragment | string | null): Promise<KeyState> {
  const claimed = await tx<{ hold_id: string | null }[]>`
    insert into idempotency_keys (scope, key, request_sha256, hold_id) values (${k.scope}, ${k.key}, ${k.requestSha256}, ${holdId}::bigint)
    on conflict (scope, key) do update
       set request_sha256 = excluded.request_sha256, hold_id = excluded.hold_id, response_status = null, response = null, created_at = now()
     where idempotency_keys.created_at < now() - ${KEY_TTL_HOURS} * interval '1 hour'
    returning hold_id`;
  if (claimed.length === 1) return { kind: 'new', holdId: claimed[0]!.hold_id };
  const [row] = await tx<{ request_sha256: string; hold_id: string | null; response_status: number | null; response: unknown }[]>`
    select request_sha256, hold_id, response_status, response from idempotency_keys where scope = ${k.scope} and key = ${k.key}`;
  if (!row || row.request_sha256 !== k.requestSha256) return { kind: 'other_request' };
  if (row.response_status === null) return { kind: 'in_progress', holdId: row.hold_id };
  return { kind: 'answered', answer: { status: row.response_status, body: row.response } };
}

/** Stores the answer that later requests with this key are given. */
export async function storeAnswer(sql: Sql, k: IdempotencyKey, a: StoredAnswer): Promise<void> {
  await sql`
    update idempotency_keys set response_status = ${a.status}, response = ${sql.json(a.body as never)}
     where scope = ${k.scope} and key = ${k.key}`;
}

/** Forgets the key: the request changed nothing (Tixstock unreachable), so a retry with the same
 * key must be free to try again. */
export async function forgetKey(sql: Sql, k: IdempotencyKey): Promise<void> {
  await sql`delete from idempotency_keys where scope = ${k.scope} and key = ${k.key}`;
}

export async function deleteOldKeys(sql: Sql): Promise<number> {
  const rows =
    await sql`delete from idempotency_keys where created_at < now() - ${KEY_TTL_HOURS} * interval '1 hour' returning key`;
  return rows.length;
}
