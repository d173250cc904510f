// Broker accounts: created through POST /api/brokers (scrypt-hashed passwords), checked by
// broker.authenticate, opened and closed by broker.open / broker.closed.
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Sql, Tx } from '../db/connect.js';

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: object) => Promise<Buffer>;
const PARAMS = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

// Checked when the user name is unknown, so an unknown name costs as long as a wrong password.
const DUMMY_HASH = `scrypt$16384$8$1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const parts = (stored ?? DUMMY_HASH).split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, N, r, p, salt, key] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(key, 'base64');
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(N),
    r: Number(r),
    p: Number(p),
    maxmem: PARAMS.maxmem,
  });
  return stored !== null && timingSafeEqual(actual, expected);
}

export class UsernameTaken extends Error {}

export async function createBroker(sql: Sql, username: string, password: string) {
  const passwordHash = await hashPassword(password);
  // Ids come from a sequence; a broker first seen in a webhook may already hold a number, so
  // skip taken ones.
  for (let attempt = 0; attempt < 10; attempt++) {
    const rows = await sql<{ id: string; username: string; created_at: Date }[]>`
      insert into brokers (id, username, password_hash)
      values (nextval('broker_id_seq')::text, ${username}, ${passwordHash})
      on conflict do nothing
      returning id, username, created_at`;
    if (rows[0]) return rows[0];
    const [taken] = await sql`select 1 from brokers where username = ${username}`;
    if (taken) throw new UsernameTaken(`username ${username} is taken`);
  }
  throw new Error('could not allocate a broker id');
}

export async function findBrokerByUsername(tx: Tx, username: string) {
  const [row] = await tx<{ id: string; password_hash: string | null; closed_at: Date | null }[]>`
    select id, password_hash, closed_at from brokers where username = ${username}`;
  return row;
}

export async function setTixstockAccountOpen(tx: Tx, brokerId: string, open: boolean): Promise<void> {
  await tx`update brokers set tixstock_account_open = ${open}, updated_at = now() where id = ${brokerId}`;
}

/** broker.open / broker.closed. A broker we have not seen yet is recorded, so that a closure
 * is never lost. Returns whether the broker was known before. */
export async function setBrokerClosed(tx: Tx, brokerId: string, closed: boolean): Promise<{ known: boolean }> {
  const [row] = await tx<{ known: boolean }[]>`
    insert into brokers (id, tixstock_account_open, closed_at)
    values (${brokerId}, ${!closed}, ${closed ? tx`now()` : null})
    on conflict (id) do update
       set tixstock_account_open = ${!closed},
           closed_at = ${closed ? tx`coalesce(brokers.closed_at, now())` : null},
           updated_at = now()
    returning (xmax <> 0) as known`;
  return row!;
}

export async function isBrokerClosed(tx: Tx, brokerId: string): Promise<boolean> {
  const [row] = await tx`select 1 from brokers where id = ${brokerId} and closed_at is not null`;
  return row !== undefined;
}

/** When the broker was closed (null: open), or undefined when the broker is unknown. */
export async function getBrokerClosedAt(db: Sql | Tx, brokerId: string): Promise<Date | null | undefined> {
  const [row] = await db<{ closed_at: Date | null }[]>`select closed_at from brokers where id = ${brokerId}`;
  return row ? row.closed_at : undefined;
}
