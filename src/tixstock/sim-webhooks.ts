// The simulator playing Tixstock's side: signed webhooks to a running service's
// /webhooks/tixstock, written like Tixstock's PHP sender ("/" as "\/", non-ASCII as \uXXXX) and
// signed over those exact bytes, changing the simulator's own state as Tixstock would.
import { createHmac } from 'node:crypto';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { listingResource, type SimListing, type SimState } from './sim-state.js';

/** JSON as PHP's json_encode writes it. */
export function phpJson(value: unknown): Buffer {
  const text = JSON.stringify(value)
    .replaceAll('/', '\\/')
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return Buffer.from(text);
}

export interface WebhookResult {
  status: number;
  body: unknown;
}

/** POSTs one signed webhook; the signature is the hex HMAC-SHA256 of the body's bytes keyed by the token. */
export async function sendWebhook(serviceUrl: string, type: string, data: unknown, token: string): Promise<WebhookResult> {
  const body = phpJson({ data, meta: { type } });
  const res = await fetch(`${serviceUrl.replace(/\/+$/, '')}/webhooks/tixstock`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'Tixstock API',
      'Tixstock-Version': 'v1',
      'X-Tixstock-Signature': createHmac('sha256', token).update(body).digest('hex'),
    },
    body: new Uint8Array(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  return { status: res.status, body: parsed };
}

/** A real one-page ticket PDF (pdf-lib) naming the order and the seat. */
export async function ticketPdf(label: string): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const page = doc.addPage([300, 144]);
  page.drawText(label, { x: 20, y: 70, size: 14, font });
  return Buffer.from(await doc.save());
}

const tixstockDate = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+0000');

let orderCount = 0;

export class WebhookPlayer {
  constructor(
    private readonly state: SimState,
    private readonly token: string,
    private readonly serviceUrl?: string,
  ) {}

  private target(serviceUrl?: string): string {
    const url = serviceUrl ?? this.serviceUrl;
    if (!url) throw new Error('serviceUrl: where to send the webhook (the service, e.g. http://127.0.0.1:3000)');
    return url;
  }

  private listingOf(listingId: string): SimListing {
    const l = this.state.byId(listingId);
    if (!l) throw new Error(`listing ${listingId}: unknown to the simulator`);
    return l;
  }

  private async expectOk(type: string, r: WebhookResult): Promise<WebhookResult> {
    if (r.status !== 200) throw new Error(`${type}: the service answered ${r.status} ${JSON.stringify(r.body)}`);
    return r;
  }

  send(type: string, data: unknown, serviceUrl?: string): Promise<WebhookResult> {
    return sendWebhook(this.target(serviceUrl), type, data, this.token);
  }

  /** ticket.add for a new listing; the id the service answers becomes the simulator listing's id. */
  async addListing(p: { quantity: number; overrides?: Record<string, unknown>; serviceUrl?: string }): Promise<SimListing> {
    const resource = listingResource(p.quantity, p.overrides);
    const r = await this.expectOk('ticket.add', await this.send('ticket.add', resource, p.serviceUrl));
    const id = (r.body as { listing_id?: unknown }).listing_id;
    if (typeof id !== 'string' || id === '')
      throw new Error(`ticket.add: the service answered no listing_id: ${JSON.stringify(r.body)}`);
    const { id: _unset, ...rest } = resource;
    return this.state.putListing({
      id,
      quantity: p.quantity,
      brokerId: String(resource.broker_id),
      eventId: String((resource.event as { id: string }).id),
      resource: rest,
    });
  }

  /** Another reseller holds tickets: Tixstock's quantity drops, and we get ticket.hold. */
  async otherHold(listingId: string, quantity: number, serviceUrl?: string): Promise<WebhookResult> {
    const l = this.listingOf(listingId);
    if (quantity > l.quantity) throw new Error(`listing ${listingId}: only ${l.quantity} left to hold`);
    l.quantity -= quantity;
    return this.send('ticket.hold', { external_id: listingId, hold_quantity: quantity }, serviceUrl);
  }

  /** Another reseller releases tickets it held. */
  async otherRelease(listingId: string, quantity: number, serviceUrl?: string): Promise<WebhookResult> {
    const l = this.listingOf(listingId);
    l.quantity += quantity;
    return this.send('ticket.release', { external_id: listingId, release_quantity: quantity }, serviceUrl);
  }

  /** Another reseller sells tickets (held by it before, `fromHold`, or straight from the listing). */
  async otherSale(
    listingId: string,
    quantity: number,
    opts: { fromHold?: boolean; orderId?: string; serviceUrl?: string } = {},
  ): Promise<WebhookResult> {
    const l = this.listingOf(listingId);
    if (!opts.fromHold) {
      if (quantity > l.quantity) throw new Error(`listing ${listingId}: only ${l.quantity} left to sell`);
      l.quantity -= quantity;
    }
    l.sold += quantity;
    const orderId = opts.orderId ?? `SIM-${Date.now().toString(36)}-${++orderCount}`;
    return this.send(
      'ticket.sold',
      {
        listing_id: listingId,
        sold_quantity: quantity,
        quantity: l.quantity,
        order_details: {
          id: orderId,
          date: tixstockDate(this.state.now()),
          quantity,
          currency: 'GBP',
          status: 'Approved',
          items: [{ listing_id: listingId }],
        },
      },
      opts.serviceUrl,
    );
  }

  /** order.update for an order: ours (sold through order/add) or another's. */
  async orderUpdate(
    orderId: string,
    change: { status?: string; shipping_tracking_id?: string | null } = {},
    serviceUrl?: string,
  ): Promise<WebhookResult> {
    const order = this.state.orders.get(orderId);
    const resource = order
      ? this.state.orderResource(order)
      : {
          id: orderId,
          date: tixstockDate(this.state.now()),
          customer: { id: 'sim-customer' },
          items: [],
          quantity: 1,
          currency: 'GBP',
          status: 'Approved',
        };
    return this.send('order.update', { ...resource, ...change }, serviceUrl);
  }

  /** order.eticket_fulfilment with a real PDF for one seat of an order. */
  async fulfil(
    orderId: string,
    p: { listingId: string; row?: string; seat?: string; pdf?: Uint8Array; serviceUrl?: string },
  ): Promise<WebhookResult> {
    const seat = p.seat ?? '21';
    const pdf = p.pdf ?? (await ticketPdf(`${orderId} row ${p.row ?? 'F'} seat ${seat}`));
    return this.send(
      'order.eticket_fulfilment',
      {
        order_id: orderId,
        id: p.listingId,
        general_admission: 0,
        row: p.row ?? 'F',
        seat,
        file: Buffer.from(pdf).toString('base64'),
        proof_file_url: [],
      },
      p.serviceUrl,
    );
  }

  /** The /_sim/play/* endpoints: one call of the player from a JSON body. */
  async play(what: string, b: Record<string, unknown>): Promise<unknown> {
    const s = b.serviceUrl === undefined ? undefined : String(b.serviceUrl);
    const listingId = String(b.listing_id ?? '');
    const quantity = Number(b.quantity ?? 1);
    switch (what) {
      case 'listing':
        return this.addListing({ quantity, overrides: b.overrides as Record<string, unknown> | undefined, serviceUrl: s });
      case 'hold':
        return this.otherHold(listingId, quantity, s);
      case 'release':
        return this.otherRelease(listingId, quantity, s);
      case 'sale':
        return this.otherSale(listingId, quantity, {
          fromHold: b.from_hold === true,
          orderId: b.order_id as string | undefined,
          serviceUrl: s,
        });
      case 'order-update':
        return this.orderUpdate(String(b.order_id), { status: b.status as string | undefined }, s);
      case 'fulfilment':
        return this.fulfil(String(b.order_id), {
          listingId,
          row: b.row as string | undefined,
          seat: b.seat as string | undefined,
          serviceUrl: s,
        });
      default:
        throw new Error(`play/${what}: one of listing, hold, release, sale, order-update, fulfilment`);
    }
  }
}
