// `npm run simulator`: the Tixstock simulator on a port, for a developer's curl and a local
// service (TIXSTOCK_API_URL=<its /v1 URL>). Settings from the environment, listed in README.
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
process.stdout.write(`Tixstock simulator: TIXSTOCK_API_URL=${sim.url} (token ${token === 'dev-token' ? '"dev-token"' : 'from TIXSTOCK_BEARER_TOKEN'}), control at ${sim.origin}/_sim/state\n`);
const stop = () => void sim.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
