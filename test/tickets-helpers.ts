// Helpers for the order, fulfilment, mail and support tests: real PDFs (pdf-lib), a real SMTP
// server (smtp-server on 127.0.0.1) and a small MIME reader for what it receives.
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { SMTPServer } from 'smtp-server';
import { type testApp, webhook } from './helpers.js';

export type TestApp = ReturnType<typeof testApp>;

/** A real PDF of about `bytes` bytes: one page and an incompressible stream, as a scanned
 * ticket's image would be. */
export async function largePdf(bytes: number): Promise<Buffer> {
  const doc = await PDFDocument.create();
  doc.addPage([300, 144]);
  const blob = Buffer.alloc(bytes);
  for (let i = 0; i + 4 <= blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
  doc.context.register(doc.context.stream(blob));
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}

/** A real PDF: `pages` pages of the given size, each saying `label` and its page number. */
export async function makePdf(label: string, opts: { pages?: number; width?: number; height?: number } = {}): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (let i = 1; i <= (opts.pages ?? 1); i++) {
    const page = doc.addPage([opts.width ?? 300, opts.height ?? 144]);
    page.drawText(`${label} page ${i}`, { x: 20, y: 70, size: 14, font });
  }
  return Buffer.from(await doc.save());
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function pageSizes(pdf: Uint8Array): Promise<number[][]> {
  const doc = await PDFDocument.load(pdf);
  return doc.getPages().map((p) => [p.getWidth(), p.getHeight()]);
}

export interface FulfilmentData {
  order_id: string;
  id?: string | number | null;
  general_admission?: unknown;
  row?: string | null;
  seat?: string | number | null;
  file?: string | null;
  proof_file_url?: unknown;
  [extra: string]: unknown;
}

/** A fulfilment webhook body, PHP style; `pdf` is base64-encoded into `file`. */
export function fulfilment(type: 'eticket' | 'mobile', data: FulfilmentData, pdf?: Uint8Array): Buffer {
  const d: Record<string, unknown> = { id: '300001', general_admission: 0, row: 'F', seat: '21', proof_file_url: [], ...data };
  if (pdf) d.file = Buffer.from(pdf).toString('base64');
  return webhook(type === 'eticket' ? 'order.eticket_fulfilment' : 'order.mobile_ticket_fulfilment', d);
}

export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- MIME ---------------------------------------------------------------------------------

export interface MimePart {
  headers: Record<string, string>;
  body: Buffer;
  parts: MimePart[];
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return headers;
}

function decodeBody(raw: string, encoding: string | undefined): Buffer {
  switch ((encoding ?? '').toLowerCase()) {
    case 'base64':
      return Buffer.from(raw.replace(/\s+/g, ''), 'base64');
    case 'quoted-printable':
      return Buffer.from(
        raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      );
    default:
      return Buffer.from(raw, 'latin1');
  }
}

export function parseMime(raw: string): MimePart {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = parseHeaders(split < 0 ? raw : raw.slice(0, split));
  const rest = split < 0 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const boundary = /boundary="?([^";]+)"?/i.exec(headers['content-type'] ?? '')?.[1];
  if (!boundary) return { headers, body: decodeBody(rest, headers['content-transfer-encoding']), parts: [] };
  const chunks = rest.split(`--${boundary}`).slice(1);
  const parts = chunks.filter((c) => !c.startsWith('--')).map((c) => parseMime(c.replace(/^\r?\n/, '').replace(/\r?\n$/, '')));
  return { headers, body: Buffer.alloc(0), parts };
}

export function leaves(p: MimePart): MimePart[] {
  return p.parts.length ? p.parts.flatMap(leaves) : [p];
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  headers: Record<string, string>;
  text: string;
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

export function readMail(raw: string, envelope: { from: string; to: string[] }): ReceivedMail {
  const root = parseMime(raw);
  const all = leaves(root);
  const attachments = all
    .filter((p) => /attachment/i.test(p.headers['content-disposition'] ?? ''))
    .map((p) => ({
      filename: /filename="?([^";]+)"?/i.exec(p.headers['content-disposition'] ?? '')?.[1] ?? '',
      contentType: (p.headers['content-type'] ?? '').split(';')[0]!.trim(),
      content: p.body,
    }));
  const text = all
    .filter((p) => /^text\/plain/i.test(p.headers['content-type'] ?? ''))
    .map((p) => p.body.toString('utf8'))
    .join('\n');
  return { ...envelope, raw, headers: root.headers, text, attachments };
}

// --- SMTP ---------------------------------------------------------------------------------

export interface TestSmtp {
  url: string;
  mails: ReceivedMail[];
  /** While set, every message is refused with this SMTP reply text (a 451 temporary failure). */
  refuse: string | null;
  close(): Promise<void>;
}

/** A real SMTP server on 127.0.0.1, plain text (no STARTTLS, no AUTH). */
export async function startSmtp(): Promise<TestSmtp> {
  const state: TestSmtp = { url: '', mails: [], refuse: null, close: async () => {} };
  const server = new SMTPServer({
    disabledCommands: ['AUTH', 'STARTTLS'],
    authOptional: true,
    logger: false,
    size: 100 * 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (state.refuse) {
          const err = Object.assign(new Error(state.refuse), { responseCode: 451 });
          return callback(err);
        }
        const envelope = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        };
        state.mails.push(readMail(Buffer.concat(chunks).toString('latin1'), envelope));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  state.url = `smtp://127.0.0.1:${port}`;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}
