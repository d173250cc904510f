// playDay against the real service in a child process, pointed at the simulator: every step of
// the scripted day agrees on both sides.
import assert from 'node:assert/strict';
import { playDay } from '../src/tixstock/sim-day.js';
import { startSimulator, type Simulator } from '../src/tixstock/simulator.js';
import { API_TOKEN, resetDatabase, TOKEN } from './helpers.js';
import { startServer, type ServerProcess } from './server-process.js';

describe('Tixstock simulator: a scripted day against the service', () => {
  let sim: Simulator;
  let server: ServerProcess;
  before(async () => {
    await resetDatabase();
    sim = await startSimulator({ token: TOKEN });
    server = await startServer({ TIXSTOCK_API_URL: sim.url, LOG_LEVEL: 'silent' });
  });
  after(async () => {
    await server?.stop();
    await sim?.close();
  });

  it('plays every step, and the service and Tixstock agree after each', async () => {
    const day = await playDay({ sim, serviceUrl: server.url, apiToken: API_TOKEN });
    assert.ok(
      day.ok,
      JSON.stringify(
        day.steps.filter((s) => !s.ok),
        null,
        1,
      ),
    );
    assert.equal(day.steps.length, 16);
    assert.equal(sim.state.orders.get(day.orderId)!.status, 'Dispatched');
  });
});
