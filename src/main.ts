// Starts the service: configuration, database (migrated), HTTP server, graceful shutdown.
import type { Server } from 'node:http';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { migrate } from './db/migrate.js';
import { openDatabase, type Database } from './db/open.js';
import { startJobWorker } from './jobs/worker.js';
import { developmentBanner, developmentSecrets, isDevelopment, missingSecrets, REFUSED_WITHOUT, type SecretName } from './dev.js';
import type { Simulator } from './tixstock/simulator.js';
import { log } from './log.js';
import { abortRuns } from './reconcile/run.js';
import { reconcileJobs, schedulePeriodicReconciliation } from './reconcile/schedule.js';
import { salesSweep } from './sales/sweep.js';
import { mailJobHandlers } from './support/mail-jobs.js';
import { syncJobHandlers } from './sales/sync.js';
import { createTixstockClient } from './tixstock/client.js';
import { pdfWorkers } from './tickets/pdf-workers.js';
import { WebhookGate } from './webhooks/receiver.js';
import { retentionTask } from './webhooks/retention.js';

const SHUTDOWN_GRACE_MS = 25_000; // Heroku sends SIGKILL 30 s after SIGTERM

export async function start(config: Config) {
  const db = await openDatabase(config, 'tixstock-web');
  const applied = await migrate(db.sql);
  if (applied.length) log.info('migrations applied', { applied });

  // Mail and other side work queued by webhooks, pushes to Tixstock queued by the sales calls,
  // done after their transactions commit; the expiry of our holds; the periodic reconciliation.
  const tixstock = createTixstockClient(config);
  const worker = startJobWorker({
    sql: db.sql,
    config,
    handlers: { ...mailJobHandlers, ...syncJobHandlers(tixstock), ...reconcileJobs(tixstock) },
    periodic: [retentionTask, salesSweep(db.sql, config)],
  });
  await schedulePeriodicReconciliation(db.sql, config).catch((err) =>
    log.error('could not schedule the periodic reconciliation', { error: err }),
  );
  pdfWorkers(config).warm();
  if (config.PDF_TIMEOUT_MS + 1000 > config.WEBHOOK_DEADLINE_MS) {
    log.warn(
      'PDF_TIMEOUT_MS is not 1 s below WEBHOOK_DEADLINE_MS: a slow bad PDF is answered 503 (and retried) instead of refused',
      {
        pdf_timeout_ms: config.PDF_TIMEOUT_MS,
        webhook_deadline_ms: config.WEBHOOK_DEADLINE_MS,
      },
    );
  }
  let shuttingDown = false;
  const gate = new WebhookGate(
    config.WEBHOOK_CONCURRENCY,
    config.WEBHOOK_BACKLOG,
    config.WEBHOOK_LARGE_CONCURRENCY,
    config.WEBHOOK_MEMORY_LIMIT,
  );
  const app = createApp({ sql: db.sql, hot: db.hot, config, gate, tixstock, isShuttingDown: () => shuttingDown });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.PORT, () => resolve(s));
  });
  // Heroku's router keeps idle connections for up to 90 s: ours must outlive them, or a
  // request can be sent on a socket we are closing.
  server.keepAliveTimeout = 95_000;
  server.headersTimeout = 96_000;
  // An outer bound on receiving a whole request (Node's default is 300 s); a webhook's body is
  // held to its own deadline and WEBHOOK_MIN_UPLOAD_RATE well before this (receiver.ts).
  server.requestTimeout = 120_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  log.info('listening', {
    port,
    embedded_database: db.embedded,
    tokens: config.TIXSTOCK_BEARER_TOKEN.length,
    mode: isDevelopment(config) ? 'development' : 'production',
  });
  for (const name of missingSecrets(config)) log.warn(`${name} is unset: ${REFUSED_WITHOUT[name]}`, { variable: name });

  // SIGTERM (Heroku sends it at every deploy and daily restart, sometimes twice): stop
  // accepting, answer /readyz 503, let every webhook in flight (counted from its first byte,
  // so an upload in progress too) finish, then close the pool and exit 0.
  const shutdown = async (signal: string) => {
    if (shuttingDown) {
      log.info('already shutting down', { signal, in_flight: gate.inFlight });
      return;
    }
    shuttingDown = true;
    gate.closing = true;
    log.info('shutting down', { signal, in_flight: gate.inFlight, uploading: gate.uploading });
    server.close();
    server.closeIdleConnections();
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), SHUTDOWN_GRACE_MS).unref());
    if ((await Promise.race([gate.idle(), timeout])) === 'timeout') {
      log.error('webhooks still in flight at the end of the grace period', { in_flight: gate.inFlight });
    }
    server.closeAllConnections();
    await abortRuns('the process was stopped (SIGTERM) during the run').catch((err) =>
      log.error('stopping reconciliations failed', { error: err }),
    );
    // A mail still sending after 3 s goes back to the queue (Heroku kills us 30 s after SIGTERM).
    await worker.stop(3_000).catch((err) => log.error('stopping the job worker failed', { error: err }));
    await db.close().catch((err) => log.error('closing the database failed', { error: err }));
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  return { server, db, port, shutdown, worker };
}

/** What development mode adds: the secrets it generated (or kept), and the project's Tixstock
 * simulator started in this process when TIXSTOCK_API_URL is unset. */
export interface Development {
  generated: Partial<Record<SecretName, string>>;
  simulator?: Simulator;
}

/** The configuration from the environment (a wrong value exits 1 with the reason). */
export async function configure(env: NodeJS.ProcessEnv = process.env): Promise<{ config: Config; dev?: Development }> {
  try {
    let config = loadConfig(env);
    if (!isDevelopment(config)) return { config };
    const generated = await developmentSecrets(config);
    config = loadConfig({ ...env, ...generated });
    if (env.TIXSTOCK_API_URL) return { config, dev: { generated } };
    const { startSimulator } = await import('./tixstock/simulator.js');
    const simulator = await startSimulator({
      host: '127.0.0.1',
      token: config.TIXSTOCK_BEARER_TOKEN[0]!,
      holdMinutes: config.TIXSTOCK_HOLD_MINUTES,
      serviceUrl: `http://127.0.0.1:${config.PORT}`,
    });
    log.info('TIXSTOCK_API_URL is unset: using the Tixstock simulator in this process', { url: simulator.url });
    return { config: { ...config, TIXSTOCK_API_URL: simulator.url }, dev: { generated, simulator } };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** configure() and start(); in development mode also prints how to use it. */
export async function startFromEnvironment() {
  const { config, dev } = await configure();
  const started = await start(config);
  if (dev) process.stdout.write(developmentBanner(config, started.port, dev.generated, dev.simulator?.origin));
  return { ...started, config, dev };
}

async function main() {
  try {
    await startFromEnvironment();
  } catch (err) {
    log.error('start-up failed', { error: err });
    process.exit(1);
  }
}

export type Started = Awaited<ReturnType<typeof start>> & { db: Database };

if (
  import.meta.url === `file://${process.argv[1]}` ||
  process.argv[1]?.endsWith('/main.ts') ||
  process.argv[1]?.endsWith('/main.js')
) {
  void main();
}
