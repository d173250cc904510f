// Signed webhook bodies for the bench workloads, built in the load generator's process. Each
// workload is a `next()` that returns the next body and its signature; bodies of absolute-state
// types carry a sequence number so none is answered from the log as a retry (holds and
// releases are always applied, so their bodies are signed once and reused).
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type WorkloadName = 'holds' | 'mix' | 'fulfilment';

export interface SignedBody {
  body: Buffer;
  signature: string;
}

export interface WorkloadSpec {
  name: WorkloadName;
  token: string;
  listingIds: string[];
  /** Fulfilment only: the ticket PDF each webhook carries. */
  pdf?: Buffer;
  /** Makes sequence numbers unique across runs against the same database. */
  runTag: string;
}

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'latin1');

const sign = (body: Buffer, token: string) => createHmac('sha256', token).update(body).digest('hex');
const signed = (text: string, token: string): SignedBody => {
  const body = Buffer.from(text, 'latin1');
  return { body, signature: sign(body, token) };
};

/** The fixture's "data" object opened with a sequence field first, bytes otherwise as Tixstock's
 * PHP sender wrote them (`\/`, `\uXXXX`). */
const withSeq = (text: string, seq: string) => text.replace('{"data":{', `{"data":{"bench_seq":"${seq}",`);

/** (a): ticket.hold and ticket.release of 1 on each listing in turn, so quantities stay put. */
function holds(spec: WorkloadSpec): () => SignedBody {
  const bodies: SignedBody[] = [];
  for (const type of ['hold', 'release'] as const) {
    for (const id of spec.listingIds) {
      bodies.push(signed(`{"data":{"external_id":"${id}","${type}_quantity":1},"meta":{"type":"ticket.${type}"}}`, spec.token));
    }
  }
  // Holds on every listing, then releases on every listing: neighbouring requests touch
  // different rows, as Tixstock's traffic over many listings would.
  let i = 0;
  return () => bodies[i++ % bodies.length]!;
}

const EVENT_IDS = Array.from({ length: 10 }, (_, k) => String(7004512 + k));

/** (b): what a busy day looks like: mostly holds and releases, then updates, sales (with the
 * order), new listings and event updates, spread over 10 events and the given listings. */
function mix(spec: WorkloadSpec): () => SignedBody {
  const add = fixture('ticket.add.json');
  const update = fixture('ticket.update.json').replace('"quantity_available":6', '"quantity_available":1000');
  const sold = fixture('ticket.sold.json').replace('"sold_quantity":2,"quantity":3', '"sold_quantity":2,"quantity":900');
  const event = fixture('event.update.json');
  const ids = spec.listingIds;
  const slots = [
    'hold',
    'release',
    'hold',
    'update',
    'release',
    'hold',
    'sold',
    'release',
    'hold',
    'add',
    'hold',
    'release',
    'update',
    'hold',
    'release',
    'sold',
    'hold',
    'event',
    'release',
    'update',
  ] as const;
  let n = 0;
  return () => {
    const k = n++;
    const seq = `${spec.runTag}-${k}`;
    const listing = ids[k % ids.length]!;
    const eventId = EVENT_IDS[k % EVENT_IDS.length]!;
    switch (slots[k % slots.length]!) {
      case 'hold':
        return signed(`{"data":{"external_id":"${listing}","hold_quantity":1},"meta":{"type":"ticket.hold"}}`, spec.token);
      case 'release':
        return signed(`{"data":{"external_id":"${listing}","release_quantity":1},"meta":{"type":"ticket.release"}}`, spec.token);
      case 'update':
        return signed(
          withSeq(update, seq).replace('"id":"300001"', `"id":"${listing}"`).replace('"id":"7004512"', `"id":"${eventId}"`),
          spec.token,
        );
      case 'sold':
        return signed(withSeq(sold, seq).replaceAll('"300001"', `"${listing}"`).replace('"R-20027"', `"R-${seq}"`), spec.token);
      case 'add':
        return signed(withSeq(add, seq).replace('"id":"7004512"', `"id":"${eventId}"`), spec.token);
      case 'event':
        return signed(withSeq(event, seq).replace('"id":"7004512"', `"id":"${eventId}"`), spec.token);
    }
  };
}

/** HMAC-SHA256 over `fixed + tail` where only the tail changes: the inner hash of the fixed
 * 27 MB is computed once and copied, so signing a 20 MB fulfilment costs microseconds and the
 * load generator does not compete with the server for CPU. */
function prefixSigner(token: string, fixed: Buffer): (tail: Buffer) => string {
  let key = Buffer.from(token);
  if (key.length > 64) key = createHash('sha256').update(key).digest();
  const pad = (byte: number) => Buffer.from(Buffer.concat([key, Buffer.alloc(64 - key.length)]).map((b) => b ^ byte));
  const inner = createHash('sha256').update(pad(0x36)).update(fixed);
  const outer = pad(0x5c);
  return (tail) => createHash('sha256').update(outer).update(inner.copy().update(tail).digest()).digest('hex');
}

/** (c): order.eticket_fulfilment carrying the PDF, base64 with "/" escaped as PHP sends it, one
 * distinct order per webhook (the same PDF for the same order would be "already attached"). */
function fulfilment(spec: WorkloadSpec): () => SignedBody {
  if (!spec.pdf) throw new Error('fulfilment workload needs a pdf');
  const file = spec.pdf.toString('base64').replaceAll('/', '\\/');
  // The file first, the varying order id last, so that only the tail has to be signed anew.
  const fixed = Buffer.from(
    `{"data":{"file":"${file}","id":"${spec.listingIds[0]}","general_admission":0,"row":"F","seat":"21","proof_file_url":[],"order_id":"R-`,
    'latin1',
  );
  const signTail = prefixSigner(spec.token, fixed);
  let n = 0;
  return () => {
    const tail = Buffer.from(`${spec.runTag}-${n++}"},"meta":{"type":"order.eticket_fulfilment"}}`);
    return { body: Buffer.concat([fixed, tail]), signature: signTail(tail) };
  };
}

export function workload(spec: WorkloadSpec): () => SignedBody {
  switch (spec.name) {
    case 'holds':
      return holds(spec);
    case 'mix':
      return mix(spec);
    case 'fulfilment':
      return fulfilment(spec);
  }
}
