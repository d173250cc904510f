// /api/holds, /api/brokers/:id/close and PUT /api/orders/:id/status: the reseller's own sales,
// through Tixstock's reseller API (status codes: README, "Our own sales").
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { asyncRoute, parseInput, sendError } from '../http.js';
import { ID_RULE, isId, numericId } from '../ids.js';
import { getHold, HOLD_STATUSES, listHolds } from '../inventory/holds.js';
import * as reply from '../replies.js';
import { describeRoute, idParam, pageLimit, pageOf } from '../route-doc.js';
import { customerSchema, type TixstockClient } from '../tixstock/contract.js';
import { createHold, holdView, orderHold, releaseHold, type Answer } from './holds.js';
import { idempotencyKey } from './idempotency.js';
import { closeBroker, setOrderStatus } from './sync.js';

const count = z
  .number({ error: 'must be a whole number of at least 1' })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(100_000);
const holdBody = z.object({
  listing_id: z
    .union([z.string().trim().min(1), z.number().int().positive()], { error: 'must be a listing id' })
    .transform(String),
  quantity: count,
});
const releaseBody = z.object({ quantity: count.optional() });
const orderBody = z.object({
  order_id: z.string().trim().min(1).refine(isId, `must be ${ID_RULE}`),
  order_status: z.string().trim().min(1).max(100),
  currency: z
    .string()
    .trim()
    .regex(/^[A-Za-z]{3}$/, 'must be a 3-letter currency code such as GBP')
    .transform((s) => s.toUpperCase()),
  customer: customerSchema,
  quantity: count,
});
const holdQuery = z.object({
  listing_id: numericId('a listing id').optional(),
  status: z.enum(HOLD_STATUSES as [string, ...string[]]).optional(),
  limit: pageLimit(),
  after: numericId('a hold id').optional(),
});
const statusBody = z.object({
  status: z.union([z.string().trim().min(1, 'must not be empty').max(100, 'is too long'), z.null()]),
});

const idempotent = 'Send an Idempotency-Key header to make a retry return the first answer.';

export const salesRoutes = [
  describeRoute({
    method: 'post',
    path: '/api/holds',
    summary: `Hold tickets at Tixstock for our customer (201; 409 when refused). ${idempotent}`,
    body: holdBody,
    replies: { 201: reply.hold },
  }),
  describeRoute({
    method: 'get',
    path: '/api/holds',
    summary: 'Our holds, oldest first, paged by `after`',
    query: holdQuery,
    replies: { 200: pageOf(reply.hold) },
  }),
  describeRoute({ method: 'get', path: '/api/holds/:id', summary: 'One hold', params: idParam, replies: { 200: reply.hold } }),
  describeRoute({
    method: 'post',
    path: '/api/holds/:id/release',
    summary: "Release some or all of a hold's tickets",
    params: idParam,
    body: releaseBody,
    replies: { 200: reply.hold },
  }),
  describeRoute({
    method: 'post',
    path: '/api/holds/:id/order',
    summary: `Sell a hold's tickets: the order is sent to Tixstock. ${idempotent}`,
    params: idParam,
    body: orderBody,
    replies: { 201: reply.holdOrdered },
  }),
  describeRoute({
    method: 'post',
    path: '/api/brokers/:id/close',
    summary: 'Close a broker here and at Tixstock',
    params: idParam,
    replies: { 200: reply.brokerClosed },
  }),
  describeRoute({
    method: 'put',
    path: '/api/orders/:id/status',
    summary: "Set the reseller's own status (null: back to Tixstock's); sent to Tixstock",
    params: idParam,
    body: statusBody,
    replies: { 200: reply.order, 201: reply.order },
  }),
];

function send(res: Response, a: Answer): void {
  if (a.retryAfter !== undefined) res.set('Retry-After', String(a.retryAfter));
  res.status(a.status).json(a.body);
}

/** The request's Idempotency-Key for `scope`, or a 400 already answered (undefined: none sent). */
function keyOf(req: Request, res: Response, scope: string, input: unknown) {
  const k = idempotencyKey(req.get('idempotency-key'), scope, input);
  if (k === 'invalid') {
    sendError(res, 400, 'bad request: Idempotency-Key must be 1 to 200 printable ASCII characters', [
      'headers.idempotency-key: 1 to 200 printable ASCII characters',
    ]);
    return 'answered' as const;
  }
  return k;
}

export function salesRouter(deps: {
  sql: Sql;
  config: Config;
  tixstock: TixstockClient;
  /** The order as GET /api/orders/:id answers it (support/order-view.ts), handed in by app.ts. */
  orderView: (sql: Sql, id: string) => Promise<unknown>;
}): express.Router {
  const { sql } = deps;
  const router = express.Router();

  router.post(
    '/api/holds',
    asyncRoute(async (req, res) => {
      const b = parseInput(holdBody, req.body ?? {}, 'body');
      const key = keyOf(req, res, 'hold', b);
      if (key === 'answered') return;
      send(res, await createHold(deps, b.listing_id, b.quantity, key));
    }),
  );

  router.get(
    '/api/holds',
    asyncRoute(async (req, res) => {
      const q = parseInput(holdQuery, req.query, 'query');
      const rows = await listHolds(sql, { listingId: q.listing_id, status: q.status as never, limit: q.limit, after: q.after });
      const last = rows[rows.length - 1];
      res.json({ items: rows.map(holdView), next: rows.length === q.limit && last ? last.id : null });
    }),
  );

  router.get(
    '/api/holds/:id',
    asyncRoute(async (req, res) => {
      const h = await getHold(sql, String(req.params.id));
      if (!h) return sendError(res, 404, `hold ${String(req.params.id)} not found`);
      res.json(holdView(h));
    }),
  );

  router.post(
    '/api/holds/:id/release',
    asyncRoute(async (req, res) => {
      const b = parseInput(releaseBody, req.body ?? {}, 'body');
      send(res, await releaseHold(deps, String(req.params.id), b.quantity));
    }),
  );

  router.post(
    '/api/holds/:id/order',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const b = parseInput(orderBody, req.body ?? {}, 'body');
      const key = keyOf(req, res, `order:${id}`, b);
      if (key === 'answered') return;
      send(res, await orderHold(deps, id, b, key));
    }),
  );

  router.post(
    '/api/brokers/:id/close',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const closed = id.length <= 100 ? await closeBroker(sql, id) : undefined;
      if (!closed) return sendError(res, 404, `broker ${id} not found`);
      res.json(closed);
    }),
  );

  router.put(
    '/api/orders/:id/status',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      if (!isId(id)) return sendError(res, 400, `bad request: an order id is ${ID_RULE}`);
      const body = parseInput(statusBody, req.body ?? {}, 'body', ' (expected {"status": "<status>"} or {"status": null})');
      const { created } = await setOrderStatus(sql, id, body.status);
      res.status(created ? 201 : 200).json(await deps.orderView(sql, id));
    }),
  );

  return router;
}
