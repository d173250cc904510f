// /api/orders and /api/tickets: the order view (order-view.ts) over the API, the stored PDFs (one,
// or all of an order merged). The reseller's own order status (PUT) is in sales/routes.ts: it is pushed to Tixstock.
import express, { type Request, type Response } from 'express';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { asyncRoute, sendError } from '../http.js';
import { ID_RULE } from '../ids.js';
import * as reply from '../replies.js';
import { describeRoute, idParam } from '../route-doc.js';
import { pdfFileName } from '../tickets/pdf-name.js';
import { ticketPdf } from '../tickets/store.js';
import { isOrderId, mergedTickets, orderView } from './order-view.js';

const pdf = { contentType: 'application/pdf', description: 'the PDF, as a download' };

export const orderRoutes = [
  describeRoute({
    method: 'get',
    path: '/api/orders/:id',
    summary: 'The order, its tickets and proof URLs',
    params: idParam,
    replies: { 200: reply.order },
  }),
  describeRoute({
    method: 'get',
    path: '/api/orders/:id/tickets.pdf',
    summary: "All the order's tickets merged into one PDF, in seat order",
    params: idParam,
    replies: { 200: pdf },
  }),
  describeRoute({
    method: 'get',
    path: '/api/tickets/:id.pdf',
    summary: 'One stored ticket PDF, byte for byte as received',
    params: idParam,
    replies: { 200: pdf },
  }),
];

/** Sends PDF bytes as a download named `filename`. */
export function sendPdf(res: Response, pdf: Uint8Array, filename: string): void {
  res.status(200).type('application/pdf').attachment(filename).set('X-Content-Type-Options', 'nosniff');
  res.send(Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength));
}

export function ordersRouter(deps: { sql: Sql; config: Config }): express.Router {
  const { sql, config } = deps;
  const router = express.Router();

  const orderId = (req: Request, res: Response): string | undefined => {
    const id = String(req.params.id);
    if (isOrderId(id)) return id;
    sendError(res, 400, `bad request: an order id is ${ID_RULE}`);
  };

  router.get(
    '/api/orders/:id',
    asyncRoute(async (req, res) => {
      const id = orderId(req, res);
      if (id === undefined) return;
      const order = await orderView(sql, id);
      if (!order) return sendError(res, 404, `order ${id} not found`);
      res.json(order);
    }),
  );

  router.get(
    '/api/orders/:id/tickets.pdf',
    asyncRoute(async (req, res) => {
      const id = orderId(req, res);
      if (id === undefined) return;
      const merged = await mergedTickets(sql, config, id);
      if (!merged.found) return sendError(res, 404, `order ${id} not found`);
      if (merged.error) return sendError(res, 422, merged.error);
      if (!merged.pdf) return sendError(res, 404, `order ${id} has no ticket PDFs yet`);
      sendPdf(res, merged.pdf, pdfFileName(id, 'tickets'));
    }),
  );

  router.get(
    '/api/tickets/:id.pdf',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const ticket = await ticketPdf(sql, id);
      if (!ticket) return sendError(res, 404, `ticket ${id} not found`);
      sendPdf(res, ticket.pdf, pdfFileName(ticket.order_id, 'ticket', ticket.id));
    }),
  );

  return router;
}
