// Proves a fulfilment's `file` is a ticket PDF before anything is stored: strict base64, then
// pdf-lib must load it (in a worker thread, under limits: pdf-workers.ts) and find pages. Runs
// before the webhook's transaction opens, so the transaction only inserts.
import { JsonStringBytes } from '../json-bytes.js';
import type { PdfWorkers } from './pdf-workers.js';

export interface CheckedPdf {
  /** The PDF's bytes, as stored. */
  pdf: Buffer;
  sha256: string;
  bytes: number;
  pages: number;
}

export type FileCheck = ({ ok: true } & CheckedPdf) | { ok: false; fileError: string };

/** Decodes strictly: Node's decoder skips any character it does not know, so a truncated or
 * mangled file would otherwise become a shorter PDF without a word. A large file arrives as
 * the bytes of its JSON string (see json-bytes.ts) and is decoded from them in steps, without
 * ever making one string of it. Returns the bytes, or what is wrong. */
export function decodeBase64Strict(file: string | JsonStringBytes): Buffer | string {
  return runAtOnce(decoding(file));
}

/** decodeBase64Strict letting other work run every few steps: tens of MB take 100-200 ms,
 * which in one piece would hold up every webhook of the process. */
export function decodeBase64StrictYielding(file: string | JsonStringBytes): Promise<Buffer | string> {
  return runYielding(decoding(file));
}

/** The decoding, paused (yield) after each step. */
function* decoding(file: string | JsonStringBytes): Generator<void, Buffer | string> {
  if (file instanceof JsonStringBytes) {
    const src = file.bytes;
    const spaced = src[0] === 0x20 || src[src.length - 1] === 0x20;
    const decoded = spaced ? undefined : yield* decodeSteps(unescapedSteps(src), Math.ceil((src.length * 3) / 4));
    return decoded ?? (yield* decoding(file.toString().trim())); // other escapes, or to name the problem
  }
  return (yield* decodeSteps([file], Math.ceil((file.length * 3) / 4))) ?? whyNotBase64(file);
}

function runAtOnce<T>(work: Generator<void, T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/** Steps run between two turns of the event loop (about 1 MB of base64). */
const STEPS_PER_TURN = 16;

async function runYielding<T>(work: Generator<void, T>): Promise<T> {
  for (let n = 1; ; n++) {
    const step = work.next();
    if (step.done) return step.value;
    if (n % STEPS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Escaped bytes decoded per step: small enough that the step's strings stay in V8's young
 * generation (collected at once) instead of its large-object space. */
const STEP = 48 * 1024;

/** The base64 text of a JSON string's bytes in steps, PHP's "\\/" escapes undone; undefined
 * for a step with any other escape. */
function* unescapedSteps(src: Buffer): Generator<string | undefined> {
  for (let a = 0; a < src.length; ) {
    let b = Math.min(src.length, a + STEP);
    if (b < src.length && src[b - 1] === 0x5c) b++; // never split an escape
    let text = src.toString('latin1', a, b);
    if (text.includes('\\')) text = text.replaceAll('\\/', '/');
    yield text.includes('\\') ? undefined : text;
    a = b;
  }
}

/** Strict base64 (PHP's base64_encode: standard alphabet, padded, canonical) from text given in
 * steps; undefined when it is not. The proof is fast for tens of MB (a regular expression over
 * 27 MB costs ~200 ms): Node's decoder skips unknown characters and stops at '=', so any of
 * those, or a misplaced '=', leaves fewer bytes than the length promises; it also takes the URL
 * alphabet ('-', '_'), which is looked for apart. */
function* decodeSteps(steps: Iterable<string | undefined>, capacity: number): Generator<void, Buffer | undefined> {
  // Never a slice of Node's shared pool: the whole ArrayBuffer goes to the PDF worker and back.
  const out = Buffer.allocUnsafeSlow(capacity);
  let o = 0;
  let carry = '';
  let last = '';
  const it = steps[Symbol.iterator]();
  for (let step = it.next(); !step.done; ) {
    if (step.value === undefined || step.value.includes('-') || step.value.includes('_')) return undefined;
    const text = carry + step.value;
    step = it.next();
    const end = step.done === true;
    const usable = end ? text.length : text.length - (text.length % 4);
    const piece = text.slice(0, usable);
    carry = text.slice(usable);
    const eq = piece.indexOf('=');
    if (eq !== -1 && (!end || eq < piece.length - 2 || !/^={1,2}$/.test(piece.slice(eq)))) return undefined;
    if (end && piece.length % 4 !== 0) return undefined;
    const padding = eq === -1 ? 0 : piece.length - eq;
    const written = out.write(piece, o, 'base64');
    if (written !== (piece.length / 4) * 3 - padding) return undefined;
    o += written;
    last = piece;
    yield;
  }
  const bytes = out.subarray(0, o);
  // Non-zero bits after the last full byte ("QR==" vs "QQ==") mean it was not produced by an
  // encoder. Only the last quantum can have them: re-encode just that, not tens of MB.
  const tail = bytes.subarray(Math.max(0, bytes.length - (bytes.length % 3 || 3)));
  if (last.length >= 4 && tail.toString('base64') !== last.slice(-4)) return undefined;
  return bytes;
}

/** What is wrong with text that is not strict base64, named for the reply. */
function whyNotBase64(text: string): string {
  if (text.length % 4 !== 0) return `its length (${text.length}) is not a multiple of 4`;
  const at = text.search(/[^A-Za-z0-9+/=]/);
  if (at >= 0) return `it contains ${JSON.stringify(text[at])} at position ${at}, which is not a base64 character`;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return "'=' padding appears before the end";
  return 'it is not canonical base64 (stray bits in the padding)';
}

export async function checkTicketFile(
  base64: string | JsonStringBytes,
  workers: PdfWorkers,
  deadlineAt?: number,
): Promise<FileCheck> {
  const decoded = await decodeBase64StrictYielding(base64);
  if (typeof decoded === 'string') return { ok: false, fileError: `file is not valid base64: ${decoded}` };
  const checked = await workers.check(decoded, deadlineAt);
  if (!checked.ok) {
    return {
      ok: false,
      fileError: checked.limit
        ? `file is refused: ${checked.reason}, beyond what a ticket PDF needs`
        : `file is not a PDF: ${checked.reason}`,
    };
  }
  const pdf = Buffer.from(checked.pdf.buffer, checked.pdf.byteOffset, checked.pdf.byteLength);
  return { ok: true, pdf, pages: checked.pages, bytes: pdf.length, sha256: checked.sha256 };
}
