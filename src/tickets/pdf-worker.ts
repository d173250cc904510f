// The worker thread that loads brokers' PDFs with pdf-lib (started by pdf-workers.ts). pdf-lib
// parses synchronously and its cost grows with what a file claims (xref entries, objects,
// compressed object streams), so it runs here, off the event loop, under limits: the pool times
// each job and V8 caps this thread's heap; objects and the bytes inflated from object and xref
// streams are counted here while parsing, and a file past a limit is refused.
import { createHash } from 'node:crypto';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import {
  decodePDFRawStream,
  PDFArray,
  PDFDocument,
  PDFName,
  PDFNumber,
  PDFParser,
  PDFRawStream,
  type PDFContext,
  type PDFObject,
} from 'pdf-lib';
import type { PdfJob, PdfLimits, PdfReply } from './pdf-workers.js';

class LimitExceeded extends Error {}

// pdf-lib reports each broken object it skips on the console; the reply says what matters.
console.warn = () => {};

// pdf-lib copies every stream out of the file (20 MB for a 20 MB ticket), outside the heap.
// Garbage after the job, but this thread allocates little else, so V8 would keep it until tens
// of MB more piled up: collected after each job instead (a few ms on this small heap).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** The parts of pdf-lib's parser hooked here (not in its public types). */
interface ParserHooks {
  parseDocument(): Promise<PDFContext>;
  /** Called once per object parsed, in the file and inside object streams. */
  shouldWaitForTick(): boolean;
  /** Parses one object; top-level streams come back raw, before pdf-lib inflates object streams. */
  parseObject(): PDFObject;
  maybeParseCrossRefSection(): unknown;
  /** Two per xref entry. */
  parseRawInt(): number;
}

const OBJECT_STREAM_TYPES = [PDFName.of('ObjStm'), PDFName.of('XRef')];
const INFLATE_STEP = 64 * 1024;

/** PDFDocument.load, counting objects, xref entries and inflated bytes as it goes. Once a limit is
 * passed every later step throws, since pdf-lib catches some errors and parses on. */
async function loadWithinLimits(bytes: Uint8Array, limits: PdfLimits): Promise<PDFDocument> {
  const parser = PDFParser.forBytesWithOptions(bytes) as unknown as ParserHooks;
  let objects = 0;
  let inflated = 0;
  let exceeded: string | undefined;
  const fail = (why?: string): never => {
    exceeded ??= why;
    throw new LimitExceeded(exceeded);
  };
  const count = (n: number) => {
    if (exceeded) fail();
    objects += n;
    if (objects > limits.maxObjects) fail(`it has more than ${limits.maxObjects} objects or xref entries`);
  };
  parser.shouldWaitForTick = () => {
    count(1);
    return false;
  };
  const parseObject = parser.parseObject.bind(parser);
  parser.parseObject = () => {
    if (exceeded) fail();
    const object = parseObject();
    // pdf-lib inflates object and xref streams whole while loading: a small file can inflate to
    // gigabytes. Inflate them here first, stopping at what is left of the allowance.
    const type = object instanceof PDFRawStream ? object.dict.lookup(PDFName.of('Type')) : undefined;
    if (object instanceof PDFRawStream && OBJECT_STREAM_TYPES.includes(type as PDFName)) {
      let size = 0;
      try {
        // In steps: asked for all that is left at once, the decoder would allocate it at once.
        const stream = decodePDFRawStream(object);
        for (let got = -1; got !== 0 && inflated + size <= limits.maxInflatedBytes; size += got)
          got = stream.getBytes(INFLATE_STEP).length;
      } catch {
        return object; // not decodable: pdf-lib's own parse says so
      }
      inflated += size;
      if (inflated > limits.maxInflatedBytes)
        fail(`its object streams inflate to more than ${Math.round(limits.maxInflatedBytes / 2 ** 20)} MB`);
      // An xref stream's entries are objects to pdf-lib too: W gives the bytes of one.
      const widths = object.dict.lookup(PDFName.of('W'));
      const width =
        widths instanceof PDFArray ? widths.asArray().reduce((n, w) => n + (w instanceof PDFNumber ? w.asNumber() : 0), 0) : 0;
      if (type === PDFName.of('XRef') && width > 0) count(Math.floor(size / width));
    }
    return object;
  };
  // An xref table is counted while it is read: a bogus one of millions of entries would
  // otherwise fill the heap first.
  let inXref = false;
  const parseRawInt = parser.parseRawInt.bind(parser);
  parser.parseRawInt = () => {
    if (inXref) count(0.5);
    return parseRawInt();
  };
  const parseXref = parser.maybeParseCrossRefSection.bind(parser);
  parser.maybeParseCrossRefSection = () => {
    inXref = true;
    try {
      return parseXref();
    } finally {
      inXref = false;
    }
  };
  const context = await parser.parseDocument();
  if (exceeded) fail();
  // What PDFDocument.load does with the context (its constructor is not in the public types).
  const Document = PDFDocument as unknown as new (
    context: PDFContext,
    ignoreEncryption: boolean,
    updateMetadata: boolean,
  ) => PDFDocument;
  return new Document(context, true, false);
}

const reason = (err: unknown) =>
  err instanceof LimitExceeded
    ? err.message
    : `pdf-lib could not load it (${String((err as Error)?.message ?? err).slice(0, 200)})`;

/** Pages and sha256 of a ticket PDF. Encrypted ticket PDFs (no-edit owner passwords are common
 * on tickets) are accepted: their pages can still be counted. */
async function check(pdf: Uint8Array, limits: PdfLimits): Promise<PdfReply> {
  if (pdf.length < 5 || Buffer.from(pdf.buffer, pdf.byteOffset, Math.min(pdf.length, 1024)).indexOf('%PDF-') < 0) {
    return { ok: false, reason: 'there is no %PDF- header', limit: false };
  }
  let pages: number;
  try {
    pages = (await loadWithinLimits(pdf, limits)).getPageCount();
  } catch (err) {
    return { ok: false, reason: reason(err), limit: err instanceof LimitExceeded };
  }
  if (pages === 0) return { ok: false, reason: 'it has no pages', limit: false };
  return { ok: true, pages, sha256: createHash('sha256').update(pdf).digest('hex'), pdf };
}

/** Every page of the PDFs in one PDF, in the order given. */
async function merge(pdfs: Uint8Array[], limits: PdfLimits): Promise<PdfReply> {
  const merged = await PDFDocument.create();
  for (const [index, bytes] of pdfs.entries()) {
    try {
      const doc = await loadWithinLimits(bytes, limits);
      for (const page of await merged.copyPages(doc, doc.getPageIndices())) merged.addPage(page);
    } catch (err) {
      return { ok: false, reason: reason(err), limit: err instanceof LimitExceeded, index };
    }
  }
  return { ok: true, pdf: await merged.save() };
}

parentPort!.on('message', async (job: PdfJob) => {
  let reply: PdfReply;
  try {
    reply = job.kind === 'check' ? await check(job.pdf, job.limits) : await merge(job.pdfs, job.limits);
  } catch (err) {
    reply = { ok: false, reason: reason(err), limit: false };
  }
  // The checked PDF goes back to its owner, a merged one to the caller: moved, not copied.
  const transfer = 'pdf' in reply && reply.pdf.buffer instanceof ArrayBuffer ? [reply.pdf.buffer] : [];
  parentPort!.postMessage({ ...reply, heapUsed: getHeapStatistics().used_heap_size }, transfer);
  setImmediate(collectGarbage); // once this job's references are gone
});

parentPort!.postMessage('ready');
