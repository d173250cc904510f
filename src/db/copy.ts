// One row written with COPY ... FROM STDIN in PostgreSQL's binary format, for rows that carry
// tens of MB (webhook bodies, ticket PDFs). As a query parameter, postgres.js builds the whole
// value into one message and copies it again to write it, and sends bytes as hex text (two to
// three times the value in memory, plus work for PostgreSQL to convert it back); a COPY stream
// takes it in slices of 1 MB, as bytes.
import { once } from 'node:events';
import type { Sql, Tx } from './connect.js';

/** The column types copyRow can encode, with their binary representation. */
export type CopyType = 'text' | 'json' | 'jsonb' | 'bytea' | 'bool' | 'int2' | 'int4' | 'int8';

export type CopyColumns = Record<string, CopyType>;
type Value = string | number | bigint | boolean | Buffer | null | undefined;

const SLICE = 1024 * 1024;
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Writes one row; `values` has a value (null for NULL) for every column of `columns`. */
export async function copyRow(db: Sql | Tx, table: string, columns: CopyColumns, values: Record<string, Value>): Promise<void> {
  const names = Object.keys(columns);
  const parts: Buffer[] = [SIGNATURE, int(4, 0), int(4, 0), int(2, names.length)];
  for (const name of names) {
    const v = values[name];
    if (v === null || v === undefined) {
      parts.push(int(4, -1));
      continue;
    }
    const bytes = encode(columns[name]!, v);
    parts.push(int(4, bytes.length), bytes);
  }
  parts.push(int(2, -1));

  const stream = await db`copy ${db(table)} (${db(names)}) from stdin with (format binary)`.writable();
  const done = new Promise<void>((resolve, reject) => {
    stream.on('finish', resolve); // postgres.js finishes the stream when PostgreSQL confirms the COPY
    stream.on('error', reject);
  });
  done.catch(() => {}); // awaited below; a failure while writing ends the loop first
  for (const part of parts) {
    for (let at = 0; at < part.length; at += SLICE) {
      if (!stream.write(part.subarray(at, at + SLICE))) await Promise.race([once(stream, 'drain'), done]);
    }
  }
  stream.end();
  await done;
}

/** copyRow for a table with an identity column `id`: returns the id the row got, the value the
 * COPY took from the column's sequence, which currval() reads in this same session. */
export async function copyRowReturningId(
  db: Sql | Tx,
  table: string,
  columns: CopyColumns,
  values: Record<string, Value>,
): Promise<string> {
  await copyRow(db, table, columns, values);
  const [row] = await db<{ id: string }[]>`select currval(pg_get_serial_sequence(${table}, 'id'))::text as id`;
  return row!.id;
}

function encode(type: CopyType, v: Exclude<Value, null | undefined>): Buffer {
  switch (type) {
    case 'bytea':
      if (!Buffer.isBuffer(v)) throw new TypeError('bytea values must be Buffers');
      return v;
    case 'text':
    case 'json':
      return Buffer.from(String(v), 'utf8');
    case 'jsonb':
      return Buffer.concat([Buffer.from([1]), Buffer.from(String(v), 'utf8')]); // format version 1
    case 'bool':
      return Buffer.from([v ? 1 : 0]);
    case 'int2':
      return int(2, Number(v));
    case 'int4':
      return int(4, Number(v));
    case 'int8': {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(BigInt(v as string | number | bigint));
      return b;
    }
  }
}

function int(size: 2 | 4, n: number): Buffer {
  const b = Buffer.alloc(size);
  if (size === 2) b.writeInt16BE(n);
  else b.writeInt32BE(n);
  return b;
}
