// The Tixstock simulator as its own process for the sales bench (its CPU apart from the load
// generator's), with no rate limit; tells its parent its URL over IPC.
import { startSimulator } from '../src/tixstock/simulator.js';

const sim = await startSimulator({
  token: process.env.TIXSTOCK_BEARER_TOKEN ?? 'bench-bearer-token',
  serviceUrl: process.env.SERVICE_URL,
  rateLimitPerMinute: null,
  holdMinutes: 30,
});
process.send!({ url: sim.url, origin: sim.origin });
process.on('disconnect', () => void sim.close().then(() => process.exit(0)));
process.on('SIGTERM', () => void sim.close().then(() => process.exit(0)));
