// A short scripted day against a running service whose TIXSTOCK_API_URL is this simulator: a
// listing arrives, another reseller holds and sells, our customer holds, drops one, pays, Tixstock
// updates the order and sends the PDFs, and our status reaches Tixstock. Each step checks that the
// service and the simulator agree, for the demo and for a developer's smoke test.
import type { Simulator } from './simulator.js';

export interface DayStep {
  step: string;
  ok: boolean;
  detail: string;
}

export interface Day {
  listingId?: string;
  holdId?: string;
  orderId: string;
  steps: DayStep[];
  ok: boolean;
}

export interface PlayDayOptions {
  sim: Simulator;
  /** The service's base URL, e.g. http://127.0.0.1:3000. */
  serviceUrl: string;
  /** The service's API_TOKEN. */
  apiToken: string;
  /** One line per step (e.g. console.log); silent when unset. */
  say?: (line: string) => void;
  /** How long to wait for our status to reach Tixstock through the service's job worker. */
  syncTimeoutMs?: number;
  /** Fields of the day's listing resource (another event, other seats): two days with the same
   * listing would send the same ticket.add, which the service rightly answers as a retry. */
  listing?: Record<string, unknown>;
}

export async function playDay(o: PlayDayOptions): Promise<Day> {
  const base = o.serviceUrl.replace(/\/+$/, '');
  const orderId = `DAY-${Date.now().toString(36)}`;
  const day: Day = { orderId, steps: [], ok: true };
  const note = (step: string, ok: boolean, detail: string) => {
    day.steps.push({ step, ok, detail });
    day.ok &&= ok;
    o.say?.(`${ok ? 'ok  ' : 'FAIL'} ${step}: ${detail}`);
    return ok;
  };
  const apiCall = async (method: string, path: string, body?: unknown, key?: string) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${o.apiToken}`, 'Content-Type': 'application/json' };
    if (key) headers['Idempotency-Key'] = key;
    const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = { text };
    }
    return { status: res.status, body: json };
  };
  const agree = async (step: string, expected: number) => {
    const here = (await apiCall('GET', `/api/listings/${day.listingId}`)).body.quantity;
    const there = o.sim.listing(day.listingId!)?.quantity;
    return note(step, here === expected && there === expected, `service ${here}, Tixstock ${there}, expected ${expected}`);
  };

  const listing = await o.sim.webhooks.addListing({ quantity: 10, overrides: o.listing, serviceUrl: base });
  day.listingId = listing.id!;
  await agree(`ticket.add: listing ${day.listingId} with 10 tickets`, 10);

  const h = await o.sim.webhooks.otherHold(day.listingId, 2, base);
  note('another reseller holds 2 (ticket.hold)', h.status === 200, `webhook answered ${h.status}`);
  await agree('after their hold', 8);

  const hold = await apiCall('POST', '/api/holds', { listing_id: day.listingId, quantity: 3 }, `${orderId}-hold`);
  day.holdId = hold.body.id;
  if (
    !note(
      'our customer holds 3 (POST /api/holds)',
      hold.status === 201 && !!day.holdId,
      `${hold.status} ${JSON.stringify(hold.body).slice(0, 200)}`,
    )
  )
    return day;
  await agree('after our hold', 5);

  const rel = await apiCall('POST', `/api/holds/${day.holdId}/release`, { quantity: 1 });
  note('our customer drops 1 (POST /api/holds/:id/release)', rel.status === 200, `${rel.status}`);
  await agree('after the release', 6);

  const order = await apiCall(
    'POST',
    `/api/holds/${day.holdId}/order`,
    {
      order_id: orderId,
      order_status: 'Approved',
      currency: 'GBP',
      quantity: 2,
      customer: { id: 'day-customer-1', first_name: 'Demo', last_name: 'Customer', email_address: 'demo.customer@example.org' },
    },
    `${orderId}-order`,
  );
  note(
    `our customer pays for 2 (POST /api/holds/:id/order, order ${orderId})`,
    order.status === 201 && o.sim.state.orders.has(orderId),
    `${order.status}`,
  );
  await agree('after our sale', 6);

  const sold = await o.sim.webhooks.otherSale(day.listingId, 2, { fromHold: true, serviceUrl: base });
  note('another reseller sells the 2 it held (ticket.sold)', sold.status === 200, `webhook answered ${sold.status}`);
  await agree('after their sale', 6);

  const upd = await o.sim.webhooks.orderUpdate(orderId, { status: 'Approved' }, base);
  note('Tixstock updates our order (order.update)', upd.status === 200, `webhook answered ${upd.status}`);
  for (const seat of ['21', '22']) {
    const f = await o.sim.webhooks.fulfil(orderId, { listingId: day.listingId, seat, serviceUrl: base });
    note(`Tixstock sends the PDF for seat ${seat} (order.eticket_fulfilment)`, f.status === 200, `webhook answered ${f.status}`);
  }
  const view = await apiCall('GET', `/api/orders/${orderId}`);
  note(
    'the order has its 2 tickets (GET /api/orders/:id)',
    view.body.tickets?.length === 2,
    `${view.status}, ${view.body.tickets?.length ?? 0} tickets`,
  );

  const status = await apiCall('PUT', `/api/orders/${orderId}/status`, { status: 'Dispatched' });
  const until = Date.now() + (o.syncTimeoutMs ?? 20_000);
  while (o.sim.state.orders.get(orderId)?.status !== 'Dispatched' && Date.now() < until)
    await new Promise((r) => setTimeout(r, 100));
  const at = o.sim.state.orders.get(orderId)?.status;
  note(
    'our status reaches Tixstock (PUT /api/orders/:id/status -> order/update)',
    status.status === 200 && at === 'Dispatched',
    `${status.status}, Tixstock has ${at}`,
  );
  return day;
}
