// Parsing a webhook of tens of MB without copying its payload. A ticket fulfilment is one huge
// string (the PDF in base64) in a small JSON envelope; parsed whole, it exists twice more as
// JavaScript strings (the body's text and the parsed value, 27 MB each for a 20 MB PDF), and
// V8 keeps such strings until a full collection, so a few fulfilments in a row grew the process
// by hundreds of MB. Here every string value of LIFT_MIN bytes or more is lifted out before the
// parse and handed over as a JsonStringBytes: a view of its bytes in the body, still escaped.
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';

/** String values from this size on are lifted out. */
export const LIFT_MIN = 64 * 1024;

/** A JSON string value as the bytes between its quotes in the body (a view, not a copy),
 * escapes not yet decoded. Only definitions that opt in (registry.ts `largeStrings`) see these;
 * for all others they are turned back into strings. */
export class JsonStringBytes {
  constructor(readonly bytes: Buffer) {}

  /** The value as an ordinary string (decoding the escapes). Throws InvalidJsonString for an
   * invalid escape or a control character: lifted strings were not checked by the parse. */
  toString(): string {
    try {
      return JSON.parse(`"${this.bytes.toString('utf8')}"`) as string;
    } catch (err) {
      throw new InvalidJsonString(
        `a string of ${this.bytes.length} bytes has an invalid escape or control character (${jsonErrorWithoutText(err)} of it)`,
      );
    }
  }
}

/** A lifted string value that is not a valid JSON string (JsonStringBytes.toString). */
export class InvalidJsonString extends Error {}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The index of the quote that closes the JSON string opened at `at`, or -1. */
function stringEnd(raw: Buffer, at: number): number {
  let end = at + 1;
  for (;;) {
    end = raw.indexOf(QUOTE, end);
    if (end === -1) return -1;
    let backslashes = 0;
    while (raw[end - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
    end++;
  }
}

/** Deepest nesting of arrays and objects a webhook may have; Tixstock's go about 5 deep. Deeper
 * bodies are refused before anything recursive (parsing, validation, storing as jsonb) sees them. */
export const MAX_JSON_DEPTH = 64;

/** Whether arrays and objects nest deeper than `max` (strings skipped at memchr speed). */
export function nestsDeeperThan(raw: Buffer, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === QUOTE) {
      i = stringEnd(raw, i);
      if (i === -1) return false; // unterminated: JSON.parse says so
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Why a text is not JSON, without quoting it: V8's messages quote the input, and a body may
 * carry a secret (broker.authenticate's password). */
export function jsonErrorWithoutText(err: unknown): string {
  const message = String((err as Error)?.message ?? '');
  const position = /at position (\d+)/.exec(message);
  if (position) return `at character ${position[1]}`;
  if (/end of JSON input|Unterminated string/i.test(message)) return 'it ends before the JSON is complete';
  return 'it is not a single JSON value';
}

export type JsonBody = { ok: true; value: unknown } | { ok: false; message: string };

/** A webhook body read as JSON (parseJsonLifting), or why it cannot be: empty, not UTF-8,
 * nested too deep, or not JSON. Messages never quote the body. */
export function readJsonBody(raw: Buffer): JsonBody {
  if (raw.length === 0) return { ok: false, message: 'body is empty; expected a JSON webhook' };
  if (!isUtf8(raw)) return { ok: false, message: 'body is not valid UTF-8' };
  if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) {
    return { ok: false, message: `body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels` };
  }
  try {
    return { ok: true, value: parseJsonLifting(raw) };
  } catch (err) {
    return { ok: false, message: `body is not valid JSON: ${jsonErrorWithoutText(err)}` };
  }
}

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
    const end = stringEnd(raw, at);
    if (end === -1) return JSON.parse(raw.toString('utf8')); // unterminated: let JSON.parse say so
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
