// `npm run demo`: the service in development mode with the project's Tixstock simulator in the
// same process, and the simulator playing a few minutes of a reseller's day against it: events
// and listings arrive, other resellers hold and sell, our customers hold through /api/holds, drop
// a ticket and pay, Tixstock updates the orders and sends the ticket PDFs, and our status reaches
// Tixstock. Afterwards the API, the support page and the PDFs show that data; it keeps serving
// until Ctrl-C.
import { startFromEnvironment } from './main.js';
import { playDay } from './tixstock/sim-day.js';
import { listingResource } from './tixstock/sim-state.js';

const env = process.env;
const rounds = Number(env.DEMO_ROUNDS ?? 4);
const pauseMs = Number(env.DEMO_PAUSE_SECONDS ?? 40) * 1000;
const say = (line: string) => process.stdout.write(`demo: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (env.NODE_ENV === 'production' || env.TIXSTOCK_API_URL) {
  process.stderr.write(
    'npm run demo needs development mode with its own simulator: unset NODE_ENV=production and TIXSTOCK_API_URL\n',
  );
  process.exit(2);
}

const service = await startFromEnvironment();
const sim = service.dev!.simulator!;
const base = `http://127.0.0.1:${service.port}`;
const apiToken = service.config.API_TOKEN!;
// The day's events; each round sells seats of the next one (a new event and listing each time).
const EVENTS = [
  { id: '7004512', name: 'Northern Lights Orchestra', venue: 'Leeds Town Hall', city: 'Leeds' },
  { id: '7004601', name: 'City Derby', venue: 'Riverside Stadium', city: 'Manchester' },
  { id: '7004655', name: 'The Paper Lanterns', venue: 'Old Fire Station', city: 'Bristol' },
  { id: '7004702', name: 'Midsummer Comedy Night', venue: 'Corn Exchange', city: 'Edinburgh' },
];
const runTag = Date.now().toString(36);
function listingOf(round: number): Record<string, unknown> {
  const e = EVENTS[(round - 1) % EVENTS.length]!;
  const resource = listingResource(10);
  return {
    seat_details: { category: 'Stalls', section: `Block ${round}`, row: String.fromCharCode(64 + round), first_seat: '21' },
    event: {
      ...(resource.event as Record<string, unknown>),
      id: e.id,
      name: e.name,
      description: `${e.name} at ${e.venue} (demo ${runTag})`,
      venue: {
        name: e.venue,
        address_line_1: '1 High Street',
        address_line_2: '',
        city: e.city,
        state: '',
        postcode: 'AB1 2CD',
        country_code: 'GB',
      },
      performers: [{ id: `${e.id}-1`, name: e.name }],
    },
  };
}
const orders: string[] = [];
let ok = true;
for (let round = 1; round <= rounds; round++) {
  say(`round ${round} of ${rounds}: a listing arrives, other resellers and our customers buy`);
  const day = await playDay({ sim, serviceUrl: base, apiToken, say, listing: listingOf(round) });
  ok &&= day.ok;
  orders.push(day.orderId);
  if (day.listingId && round < rounds) {
    // Between the rounds the market moves: another reseller holds a ticket, then lets it go.
    await sleep(pauseMs / 2);
    await sim.webhooks.otherHold(day.listingId, 1, base);
    await sleep(pauseMs / 2);
    await sim.webhooks.otherRelease(day.listingId, 1, base);
  }
}
const password = service.config.SUPPORT_PASSWORD;
say(
  `${ok ? 'the day went as expected' : 'the day went WRONG (see the FAIL lines)'}: ${orders.length} orders (${orders.join(', ')})`,
);
say(`see it: http://localhost:${service.port}/support (user support, password ${password}), /support/deliveries,`);
say(`  curl -H "Authorization: Bearer ${apiToken}" http://localhost:${service.port}/api/orders/${orders[orders.length - 1]}`);
say(`  the PDFs: /api/orders/${orders[orders.length - 1]}/tickets.pdf; still serving, Ctrl-C stops`);
if (env.DEMO_EXIT === 'true') {
  if (!ok) process.exit(1);
  await service.shutdown('demo over');
}
