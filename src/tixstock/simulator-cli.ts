// `npm run simulator`: the Tixstock simulator on a port, for a developer's curl and a local
// service (TIXSTOCK_API_URL=<its /v1 URL>). Settings from the environment, listed in README.
// `npm run simulator -- day` also plays the scripted day (sim-day.ts) against SERVICE_URL.
import { playDay } from './sim-day.js';
import { startSimulator } from './simulator.js';

const env = process.env;
const token = (env.TIXSTOCK_BEARER_TOKEN ?? '').split(',')[0]?.trim() || 'dev-token';
const sim = await startSimulator({
  port: Number(env.SIMULATOR_PORT ?? 4010),
  host: env.SIMULATOR_HOST ?? '127.0.0.1',
  token,
  holdMinutes: env.TIXSTOCK_HOLD_MINUTES ? Number(env.TIXSTOCK_HOLD_MINUTES) : 30,
  rateLimitPerMinute: env.SIMULATOR_RATE_LIMIT ? Number(env.SIMULATOR_RATE_LIMIT) : 300,
  validationStatus: env.SIMULATOR_VALIDATION_STATUS ? Number(env.SIMULATOR_VALIDATION_STATUS) : 422,
  serviceUrl: env.SERVICE_URL ?? 'http://127.0.0.1:3000',
  echoOwnHolds: env.SIMULATOR_ECHO_OWN_HOLDS === 'true',
});
process.stdout.write(
  `Tixstock simulator: TIXSTOCK_API_URL=${sim.url} (token ${token === 'dev-token' ? '"dev-token"' : 'from TIXSTOCK_BEARER_TOKEN'}), control at ${sim.origin}/_sim/state\n`,
);
if (process.argv.includes('day')) {
  if (!env.API_TOKEN) throw new Error("API_TOKEN: the service's API token is needed to play the day");
  const day = await playDay({
    sim,
    serviceUrl: env.SERVICE_URL ?? 'http://127.0.0.1:3000',
    apiToken: env.API_TOKEN,
    say: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(
    `${day.ok ? 'the day went as expected' : 'the day went WRONG'} (listing ${day.listingId}, order ${day.orderId}); still serving, Ctrl-C stops\n`,
  );
  process.exitCode = day.ok ? 0 : 1;
}
const stop = () => void sim.close().then(() => process.exit());
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
