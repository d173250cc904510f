// The HTTP application: health checks, the webhook receiver, the API. main.ts starts it;
// tests mount it on supertest.
import http from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { requireApiToken } from './api/auth.js';
import { inventoryRouter, inventoryRoutes } from './api/inventory.js';
import { openApiRouter } from './api/openapi.js';
import { FailedAuthThrottle } from './auth-throttle.js';
import type { Config } from './config.js';
import { DEVELOPMENT_HOME, isDevelopment } from './dev.js';
import type { Sql } from './db/connect.js';
import { isMigrated } from './db/migrate.js';
import { isDatabaseUnavailable } from './db/transaction.js';
import { jsonErrorWithoutText } from './json-bytes.js';
import { reconciliationRoutes, reconciliationsRouter } from './reconcile/routes.js';
import { lastRun } from './reconcile/runs.js';
import { salesRouter, salesRoutes } from './sales/routes.js';
import { refuseNul, requestIdOf, sendError } from './http.js';
import { log, withLogContext } from './log.js';
import { orderRoutes, ordersRouter } from './support/order-routes.js';
import { orderView } from './support/order-view.js';
import { supportRouter } from './support/page.js';
import { createTixstockClient } from './tixstock/client.js';
import type { TixstockClient } from './tixstock/contract.js';
import { deliveriesRouter, deliveryRoutes } from './webhooks/delivery-routes.js';
import { continueHandler, isWebhookRequest, WebhookGate, webhookReceiver } from './webhooks/receiver.js';

export interface AppDeps {
  sql: Sql;
  /** The pool of holds and releases (db/open.ts); `sql` when not given. */
  hot?: Sql;
  config: Config;
  gate?: WebhookGate;
  /** Tixstock's reseller API (sales calls, reconciliation); made from config when not given. */
  tixstock?: TixstockClient;
  /** Set during shutdown: /readyz answers 503 so the router stops sending work here. */
  isShuttingDown?: () => boolean;
  /** The clock /readyz's cache is timed with (ms); tests set it. */
  now?: () => number;
}

/** A node:http request handler (what supertest and http.createServer take), and listen(). */
export type App = http.RequestListener & {
  listen(port: number, ...rest: unknown[]): http.Server;
  /** The express application behind everything but the webhook receiver (its routes are walked by a test). */
  express: express.Express;
};

export function createApp(deps: AppDeps): App {
  const { sql, config } = deps;
  const gate =
    deps.gate ??
    new WebhookGate(
      config.WEBHOOK_CONCURRENCY,
      config.WEBHOOK_BACKLOG,
      config.WEBHOOK_LARGE_CONCURRENCY,
      config.WEBHOOK_MEMORY_LIMIT,
    );
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  // The database is asked at most once a second, whatever the rate of probes: a flood of them
  // would otherwise take connections and time from the webhooks. Probes at the same time share it.
  const now = deps.now ?? Date.now;
  let readiness: { at: number; problem: Promise<string | undefined> } | undefined;
  const readinessProblem = async (): Promise<string | undefined> => {
    try {
      const migrated = await Promise.race([
        isMigrated(sql),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('database did not answer within 2 s')), 2000).unref(),
        ),
      ]);
      return migrated ? undefined : 'database migrations are not applied';
    } catch (err) {
      return `database unreachable: ${(err as Error).message}`;
    }
  };
  app.get('/readyz', async (_req, res) => {
    if (deps.isShuttingDown?.()) return sendError(res, 503, 'shutting down');
    if (!readiness || now() - readiness.at >= 1000) readiness = { at: now(), problem: readinessProblem() };
    const problem = await readiness.problem;
    if (problem) return sendError(res, 503, problem);
    res.json({ ok: true, database: 'ok', migrated: true });
  });

  if (isDevelopment(config)) app.get('/', (_req, res) => void res.type('html').send(DEVELOPMENT_HOME));

  // Heroku's router is the one proxy in front: req.ip is the address it saw (X-Forwarded-For).
  app.set('trust proxy', 1);
  const authFailures = new FailedAuthThrottle(config.AUTH_FAILURE_LIMIT);
  const tixstock = deps.tixstock ?? createTixstockClient(config); // one client: one rate limit
  app.use(openApiRouter([...inventoryRoutes, ...deliveryRoutes, ...orderRoutes, ...salesRoutes, ...reconciliationRoutes]));
  // Every other /api route: the API token, checked once here, and a JSON body without NUL.
  app.use('/api', requireApiToken(config.API_TOKEN, authFailures), express.json({ limit: '100kb' }), refuseNul());
  app.use(inventoryRouter({ sql, config }));
  app.use(deliveriesRouter({ sql, hot: deps.hot, config }));
  app.use(salesRouter({ sql, config, tixstock, orderView }));
  app.use(ordersRouter({ sql, config }));
  app.use(reconciliationsRouter({ sql, config, tixstock }));
  app.use(supportRouter({ sql, config, authFailures, lastRun }));

  app.use((req, res) => sendError(res, 404, `no route for ${req.method} ${req.path}`));
  // Errors thrown by routes and body parsers: JSON, never an HTML stack trace.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (isDatabaseUnavailable(err)) {
      res.set('Retry-After', '5');
      return sendError(res, 503, 'database unavailable; retry later');
    }
    const e = err as { status?: number; type?: string; message?: string };
    if (e.status && e.status >= 400 && e.status < 500) {
      // JSON.parse's message quotes the body, which may hold a password (POST /api/brokers).
      return sendError(
        res,
        e.status,
        e.type === 'entity.parse.failed' ? `body is not valid JSON: ${jsonErrorWithoutText(err)}` : String(e.message),
      );
    }
    log.error('request failed', { error: err });
    sendError(res, 500, 'internal error');
  });

  // Webhooks go straight to their receiver (plain node:http); everything else to express. Every
  // log line of a request carries its id (Heroku's X-Request-ID, or ours), echoed in the reply.
  const receive = webhookReceiver({ sql, hot: deps.hot, config, gate });
  const handler: http.RequestListener = (req, res) => {
    const requestId = requestIdOf(req);
    res.setHeader('X-Request-ID', requestId);
    withLogContext({ request_id: requestId }, () => (isWebhookRequest(req) ? receive(req, res) : app(req, res)));
  };
  return Object.assign(handler, {
    express: app,
    listen: (port: number, ...rest: unknown[]) =>
      http
        .createServer(handler)
        .on('checkContinue', continueHandler(receive, app))
        .listen(port, ...(rest as [])),
  });
}
