// GET /support: support staff find an order (id, customer e-mail or name), see its tickets,
// download one PDF or all merged, e-mail them, and see recent fulfilments and failing mail.
// Plain HTML forms (no JavaScript), behind HTTP Basic; POSTs also carry a form token.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import type { FailedAuthThrottle } from '../auth-throttle.js';
import { storageStats } from '../db/stats.js';
import { isDatabaseUnavailable } from '../db/transaction.js';
import { asyncRoute, refuseNul } from '../http.js';
import { ID_RULE, isSerialId } from '../ids.js';
import { searchOrders } from '../inventory/orders.js';
import { queueOrderTickets } from '../jobs/mails.js';
import { jobsOfOrder, retryJob, troubledJobs } from '../jobs/queue.js';
import { log } from '../log.js';
import { OUTCOMES } from '../replies.js';
import { pdfFileName } from '../tickets/pdf-name.js';
import { recentTickets, ticketPdf } from '../tickets/store.js';
import { deliveryDays, deliveryDetail, deliveryTypes, lastError, recentDeliveries, refusedFulfilments } from './delivery-log.js';
import { formToken, isOwnForm, requireSupportLogin } from './auth.js';
import type { Html } from './html.js';
import { emailAddress } from './mail.js';
import { mailsOfOrder } from './mail-jobs.js';
import { deliveriesPage, deliveryPage } from './deliveries-view.js';
import { sendPdf } from './order-routes.js';
import { isOrderId, mergedTickets, orderView } from './order-view.js';
import { lastReconciliation, type ShownRun } from './reconciliation-view.js';
import { homePage, messagePage, orderHref, orderPage } from './views.js';

function sendPage(res: Response, status: number, page: Html): void {
  res
    .status(status)
    .type('html')
    .set({
      'Content-Security-Policy':
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'X-Content-Type-Options': 'nosniff',
      // same-origin, not no-referrer: with no-referrer a browser posts our own forms with Origin: null.
      'Referrer-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    })
    .send(page.text);
}

const first = (v: unknown): string => (Array.isArray(v) ? first(v[0]) : typeof v === 'string' ? v : '');

export function supportRouter(deps: {
  sql: Sql;
  config: Config;
  authFailures: FailedAuthThrottle;
  /** The last reconciliation run (reconcile/runs.ts's lastRun, handed in by app.ts). */
  lastRun: (sql: Sql) => Promise<ShownRun | undefined>;
}): express.Router {
  const { sql, config } = deps;
  const router = express.Router();
  router.use(
    '/support',
    requireSupportLogin(config.SUPPORT_PASSWORD, deps.authFailures),
    express.urlencoded({ extended: false, limit: '10kb' }),
    refuseNul((res, message) => sendPage(res, 400, messagePage(400, message))),
  );
  const csrf = () => formToken(config.SUPPORT_PASSWORD!);
  const fail = (res: Response, status: number, message: string) => sendPage(res, status, messagePage(status, message));

  /** The order id in ?id= (or a posted id=), or an error page. */
  const orderIdOf = (req: Request, res: Response, from: 'query' | 'body'): string | undefined => {
    const id = first((from === 'query' ? req.query : (req.body ?? {})).id);
    if (isOrderId(id)) return id;
    fail(res, 400, `An order id (${ID_RULE}) is required.`);
  };
  const ownForm = (req: Request, res: Response) => {
    if (isOwnForm(req, config.SUPPORT_PASSWORD!)) return true;
    fail(res, 403, 'This form was not sent from the support page (missing or wrong form token); reload the page and try again.');
    return false;
  };

  router.get(
    '/support',
    asyncRoute(async (req, res) => {
      const q = first(req.query.q).trim().slice(0, 200);
      const [orders, recent, refused, failedMail, storage, run] = await Promise.all([
        searchOrders(sql, q),
        recentTickets(sql),
        refusedFulfilments(sql),
        troubledJobs(sql),
        storageStats(sql, config),
        deps.lastRun(sql),
      ]);
      const flash = req.query.retried ? `Mail job ${first(req.query.retried)} is queued again.` : undefined;
      sendPage(
        res,
        200,
        homePage({
          q,
          orders,
          recent,
          refused,
          failedMail,
          storage,
          csrf: csrf(),
          flash,
          reconciliation: lastReconciliation(run),
        }),
      );
    }),
  );

  router.get(
    '/support/deliveries',
    asyncRoute(async (req, res) => {
      const type = first(req.query.type).trim().slice(0, 100) || undefined;
      const outcome = (OUTCOMES as readonly string[]).includes(first(req.query.outcome)) ? first(req.query.outcome) : undefined;
      const day = /^\d{4}-\d{2}-\d{2}$/.test(first(req.query.day)) ? first(req.query.day) : undefined;
      const filter = { type, outcome, day };
      const limit = 200;
      const [days, rows, types, last] = await Promise.all([
        deliveryDays(sql, filter),
        recentDeliveries(sql, filter, limit),
        deliveryTypes(sql),
        lastError(sql),
      ]);
      sendPage(res, 200, deliveriesPage({ filter, days, rows, types, lastError: last, limit }));
    }),
  );

  router.get(
    '/support/delivery',
    asyncRoute(async (req, res) => {
      const id = first(req.query.id);
      const delivery = await deliveryDetail(sql, id);
      if (!delivery) return fail(res, 404, `Delivery ${id} is not known.`);
      sendPage(res, 200, deliveryPage(delivery));
    }),
  );

  router.get(
    '/support/order',
    asyncRoute(async (req, res) => {
      const id = orderIdOf(req, res, 'query');
      if (id === undefined) return;
      const order = await orderView(sql, id);
      if (!order) return fail(res, 404, `Order ${id} is not known.`);
      const [mails, jobs] = await Promise.all([mailsOfOrder(sql, id), jobsOfOrder(sql, id)]);
      const queued = first(req.query.queued);
      const flash = queued ? `E-mail queued (job ${queued}); it is sent within seconds and listed under Mail.` : undefined;
      sendPage(res, 200, orderPage({ order, mails, jobs, csrf: csrf(), flash }));
    }),
  );

  router.get(
    '/support/order/tickets.pdf',
    asyncRoute(async (req, res) => {
      const id = orderIdOf(req, res, 'query');
      if (id === undefined) return;
      const merged = await mergedTickets(sql, config, id);
      if (!merged.found) return fail(res, 404, `Order ${id} is not known.`);
      if (merged.error) return fail(res, 422, `Download all is not possible: ${merged.error}.`);
      if (!merged.pdf) return fail(res, 404, `Order ${id} has no ticket PDFs yet.`);
      sendPdf(res, merged.pdf, pdfFileName(id, 'tickets'));
    }),
  );

  router.get(
    '/support/ticket.pdf',
    asyncRoute(async (req, res) => {
      const id = first(req.query.id);
      const ticket = await ticketPdf(sql, id);
      if (!ticket) return fail(res, 404, `Ticket ${id} is not known.`);
      sendPdf(res, ticket.pdf, pdfFileName(ticket.order_id, 'ticket', ticket.id));
    }),
  );

  router.post(
    '/support/order/email',
    asyncRoute(async (req, res) => {
      if (!ownForm(req, res)) return;
      const id = orderIdOf(req, res, 'body');
      if (id === undefined) return;
      const to = emailAddress.safeParse(first(req.body?.to));
      if (!to.success) return fail(res, 400, `The address ${to.error.issues[0]?.message ?? 'is not valid'}.`);
      const order = await orderView(sql, id);
      if (!order) return fail(res, 404, `Order ${id} is not known.`);
      if (order.tickets.length === 0) return fail(res, 409, `Order ${id} has no ticket PDFs to send.`);
      const jobId = await queueOrderTickets(sql, { orderId: id, to: to.data, requestedBy: 'support page' });
      log.info('support queued order tickets mail', { order_id: id, job_id: jobId });
      res.redirect(303, `${orderHref(id)}&queued=${jobId}`);
    }),
  );

  router.post(
    '/support/job/retry',
    asyncRoute(async (req, res) => {
      if (!ownForm(req, res)) return;
      const id = first(req.body?.id);
      if (!isSerialId(id) || !(await retryJob(sql, id))) return fail(res, 404, `Job ${id} is not a failed job.`);
      res.redirect(303, `/support?retried=${id}`);
    }),
  );

  // After its routes: "database unavailable" as a page, 503 + Retry-After (other errors go on to app.ts).
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!isDatabaseUnavailable(err)) return next(err);
    res.set('Retry-After', '5');
    fail(res, 503, 'The database is unavailable right now; try again in a moment.');
  });
  return router;
}
