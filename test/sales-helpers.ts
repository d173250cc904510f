// Shared by the sales tests: the simulator, the app pointed at it, listings known to both.
import request from 'supertest';
import { createApp } from '../src/app.js';
import { createTixstockClient } from '../src/tixstock/client.js';
import type { TixstockClient } from '../src/tixstock/contract.js';
import { startSimulator, type Simulator } from '../src/tixstock/simulator.js';
import { addListing, API_TOKEN, testConfig, testSql, TOKEN, withQuantity, type App } from './helpers.js';

export interface SalesWorld {
  sim: Simulator;
  app: App;
  config: ReturnType<typeof testConfig>;
  tixstock: TixstockClient;
  /** A listing of `quantity` here (ticket.add) and at the simulator, with the same id. */
  listing(quantity: number): Promise<string>;
  close(): Promise<void>;
}

export async function salesWorld(env: Record<string, string> = {}, simOpts: { holdMinutes?: number } = {}): Promise<SalesWorld> {
  const sim = await startSimulator({ token: TOKEN, holdMinutes: simOpts.holdMinutes ?? Number(env.TIXSTOCK_HOLD_MINUTES ?? 30) });
  const config = testConfig({
    TIXSTOCK_API_URL: sim.url,
    TIXSTOCK_API_TIMEOUT_MS: '1000',
    TIXSTOCK_API_RATE_PER_MINUTE: '100000',
    ...env,
  });
  // A 429 pauses the client for 200 ms, not Tixstock's minute, so one test's 429 stays its own.
  const tixstock = createTixstockClient(config, { pauseMs: 200, refuseProduction: true });
  const app = createApp({ sql: testSql(), config, tixstock });
  return {
    sim,
    app,
    config,
    tixstock,
    async listing(quantity) {
      const id = await addListing(app, withQuantity(quantity));
      sim.putListing({ id, quantity });
      return id;
    },
    close: () => sim.close(),
  };
}

/** The API with the bearer token, and an optional Idempotency-Key. */
export function salesApi(app: Parameters<typeof request>[0]) {
  const auth = (r: request.Test) => r.set('Authorization', `Bearer ${API_TOKEN}`);
  return {
    get: (url: string) => auth(request(app).get(url)),
    post: (url: string, body: unknown = {}, key?: string) => {
      const r = auth(request(app).post(url));
      return (key ? r.set('Idempotency-Key', key) : r).send(body as object);
    },
    put: (url: string, body: unknown) => auth(request(app).put(url)).send(body as object),
  };
}

export async function quantityOf(listingId: string): Promise<{ quantity: number; ceiling: number }> {
  const [row] = await testSql()<{ quantity: number; quantity_ceiling: number }[]>`
    select quantity, quantity_ceiling from listings where id = ${listingId}`;
  return { quantity: row!.quantity, ceiling: row!.quantity_ceiling };
}

export async function ledgerOf(listingId: string) {
  return testSql()<{ reason: string; hold_id: string | null; requested: number | null; before: number | null; after: number }[]>`
    select reason, hold_id, requested, before, after from listing_quantity_changes where listing_id = ${listingId} order by id`;
}

/** The calls the simulator received, by name, since `from` (an index into sim.calls). */
export const callsOf = (sim: Simulator, name: string, from = 0) => sim.calls.slice(from).filter((c) => c.call === name);
