// Parsing a webhook of tens of MB without copying its payload. A ticket fulfilment is one huge
// string (the PDF in base64) in a small JSON envelope; parsed whole, it exists twice more as
// JavaScript strings (the body's text and the parsed value, 27 MB each for a 20 MB PDF), and
// V8 keeps such strings until a full collection, so a few fulfilments in a row grew the process
// by hundreds of MB. Here every string value of LIFT_MIN bytes or more is lifted out before the
// parse and handed over as a JsonStringBytes: a view of its bytes in the body, still escaped.
import { randomBytes } from 'node:crypto';

/** String values from this size on are lifted out. */
export const LIFT_MIN = 64 * 1024;

/** A JSON string value as the bytes between its quotes in the body (a view, not a copy),
 * escapes not yet decoded. Only definitions that opt in (registry.ts `largeStrings`) see these;
 * for all others they are turned back into strings. */
export class JsonStringBytes {
  constructor(readonly bytes: Buffer) {}

  /** The value as an ordinary string (decoding the escapes). */
  toString(): string {
    return JSON.parse(`"${this.bytes.toString('utf8')}"`) as string;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** JSON.parse of the body, with large string values lifted out as JsonStringBytes. Throws what
 * JSON.parse throws for a body that is not JSON. */
export function parseJsonLifting(raw: Buffer, min = LIFT_MIN): unknown {
  if (raw.length < min) return JSON.parse(raw.toString('utf8'));
  // Outside strings JSON has no quotes, so going from quote to closing quote visits every
  // string, and indexOf skips the bytes of a large one at memchr speed.
  const lifted = new Map<string, Buffer>();
  const nonce = randomBytes(12).toString('hex');
  const parts: Buffer[] = [];
  let copiedTo = 0;
  for (let at = raw.indexOf(QUOTE); at !== -1; ) {
    let end = at + 1;
    for (;;) {
      end = raw.indexOf(QUOTE, end);
      if (end === -1) return JSON.parse(raw.toString('utf8')); // unterminated: let JSON.parse say so
      let backslashes = 0;
      while (raw[end - 1 - backslashes] === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
      end++;
    }
    if (end - at - 1 >= min) {
      // A marker no body can contain (it carries a fresh random nonce) takes the value's place.
      const marker = `\u0000${nonce}:${lifted.size}`;
      lifted.set(marker, raw.subarray(at + 1, end));
      parts.push(raw.subarray(copiedTo, at), Buffer.from(JSON.stringify(marker)));
      copiedTo = end + 1;
    }
    at = raw.indexOf(QUOTE, end + 1);
  }
  if (lifted.size === 0) return JSON.parse(raw.toString('utf8'));
  parts.push(raw.subarray(copiedTo));
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'), (_key, value: unknown) => {
      const bytes = typeof value === 'string' ? lifted.get(value) : undefined;
      return bytes ? new JsonStringBytes(bytes) : value;
    });
  } catch {
    return JSON.parse(raw.toString('utf8')); // not JSON: the error, with positions in the body
  }
}

/** The same value with every JsonStringBytes turned back into a string. */
export function materializeStrings(value: unknown): unknown {
  if (value instanceof JsonStringBytes) return value.toString();
  if (Array.isArray(value)) return value.map(materializeStrings);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, materializeStrings(v)]));
  }
  return value;
}
