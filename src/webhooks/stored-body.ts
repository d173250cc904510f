// A fulfilment's PDF is stored once, in tickets. Its delivery keeps the body with the base64
// `file` string replaced by a reference, `"tixstock-ticket:sha256:<hex>"` (the PDF's sha256),
// and `body_file` records where the reference is and how the original string was written, so
// the exact bytes received can be rebuilt from the stored PDF (for a replay): the canonical
// base64 of the PDF, with every "/" written "\/" when the sender escaped them (PHP does).
// A body is only stored so when that rebuild gives back exactly the bytes received.
import type { JsonStringBytes } from '../json-bytes.js';

export const TICKET_REFERENCE_PREFIX = 'tixstock-ticket:sha256:';

/** deliveries.body_file: where the reference is, what it replaced. */
export interface BodyFile {
  /** Offset of the reference's opening quote in the stored body. */
  at: number;
  /** Bytes between the quotes of the string it replaced. */
  length: number;
  /** The PDF's sha256 (hex), as in tickets.sha256. */
  sha256: string;
  slashes: 'plain' | 'escaped';
}

/** A large string of a body whose decoded bytes the handler stores elsewhere. */
export interface ExternalFile {
  value: JsonStringBytes;
  pdf: Buffer;
  sha256: string;
}

export interface ReferencedBody {
  body: Buffer;
  bodyFile: BodyFile;
  /** The size of the body as received. */
  bodyBytes: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** PDF bytes per step: a multiple of 3, so each step's base64 stands alone. */
const STEP = 3 * 16 * 1024;

const referenceOf = (sha256: string) => Buffer.from(JSON.stringify(`${TICKET_REFERENCE_PREFIX}${sha256}`));

/** The base64 of `pdf` as its JSON string bytes were written, in steps (no string of 27 MB). */
function* encodedSteps(pdf: Buffer, slashes: BodyFile['slashes']): Generator<string> {
  for (let at = 0; at < pdf.length; at += STEP) {
    const text = pdf.subarray(at, at + STEP).toString('base64');
    yield slashes === 'escaped' ? text.replaceAll('/', '\\/') : text;
  }
}

/** Steps between two turns of the event loop (about 1 MB of PDF): checking a 20 MB PDF takes
 * tens of ms, which must not hold up the webhooks in flight meanwhile. */
const STEPS_PER_TURN = 21;

/** Whether `bytes` are exactly the base64 of `pdf` written with these slashes. */
async function writtenAs(bytes: Buffer, pdf: Buffer, slashes: BodyFile['slashes']): Promise<boolean> {
  let at = 0;
  let steps = 0;
  for (const step of encodedSteps(pdf, slashes)) {
    if (++steps % STEPS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    if (at + step.length > bytes.length || step !== bytes.toString('latin1', at, at + step.length)) return false;
    at += step.length;
  }
  return at === bytes.length;
}

/** The body to store for `raw` with `file` replaced by its reference, or undefined when the
 * file's string is not where expected or the rebuild would not give back `raw` exactly (e.g.
 * other escapes than "\/", or only some slashes escaped): the body is then stored whole. */
export async function bodyWithTicketReference(raw: Buffer, file: ExternalFile): Promise<ReferencedBody | undefined> {
  const bytes = file.value.bytes;
  if (bytes.buffer !== raw.buffer) return undefined; // not a view of this body
  const start = bytes.byteOffset - raw.byteOffset;
  const end = start + bytes.length;
  if (start < 1 || end >= raw.length || raw[start - 1] !== QUOTE || raw[end] !== QUOTE) return undefined;
  const slashes = bytes.includes(BACKSLASH) ? 'escaped' : 'plain';
  if (!(await writtenAs(bytes, file.pdf, slashes))) return undefined;
  const reference = referenceOf(file.sha256);
  return {
    body: Buffer.concat([raw.subarray(0, start - 1), reference, raw.subarray(end + 1)]),
    bodyFile: { at: start - 1, length: bytes.length, sha256: file.sha256, slashes },
    bodyBytes: raw.length,
  };
}

/** The body as received, rebuilt from the stored body and the referenced PDF; a string saying
 * why not when the stored body does not hold the reference where body_file says. */
export function rebuiltBody(stored: Buffer, file: BodyFile, pdf: Buffer): Buffer | string {
  const reference = referenceOf(file.sha256);
  if (!stored.subarray(file.at, file.at + reference.length).equals(reference)) {
    return `the stored body has no ticket reference at byte ${file.at}`;
  }
  const tail = stored.subarray(file.at + reference.length);
  const out = Buffer.allocUnsafe(file.at + 2 + file.length + tail.length);
  let at = stored.copy(out, 0, 0, file.at);
  out[at++] = QUOTE;
  for (const step of encodedSteps(pdf, file.slashes)) {
    if (at + step.length > file.at + 1 + file.length) return 'the ticket PDF does not match the reference (too long)';
    at += out.write(step, at, 'latin1');
  }
  if (at !== file.at + 1 + file.length) return 'the ticket PDF does not match the reference (too short)';
  out[at++] = QUOTE;
  tail.copy(out, at);
  return out;
}
