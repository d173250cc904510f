// /api/*: read access to the inventory and the delivery log, replays, broker accounts, storage.
import express, { type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import type { FailedAuthThrottle } from '../auth-throttle.js';
import { storageStats } from '../db/stats.js';
import { asyncRoute, parseInput, sendError, type AsyncHandler } from '../http.js';
import { createBroker, UsernameTaken } from '../inventory/brokers.js';
import { getEvent, listEvents } from '../inventory/events.js';
import { getListing, isListingId, listingsOfEvent, listListings, quantityChanges } from '../inventory/listings.js';
import { getDelivery, isAlreadyReplayed, listDeliveries, receivedBody, replayOf } from '../webhooks/deliveries.js';
import { processDelivery, type ProcessedDelivery } from '../webhooks/process.js';
import { apiGate } from './auth.js';
import { describeRoute, pageOf } from './describe.js';
import * as reply from './schemas.js';

const MAX_INLINE_BODY = 1024 * 1024;

const limit = z.coerce.number().int().min(1).max(500).default(100);
const digits = z.string().regex(/^\d{1,18}$/, 'must be a numeric id');
const listingQuery = z.object({
  event_id: z.string().min(1).optional(),
  broker_id: z.string().min(1).optional(),
  status: z.enum(['published', 'deleted']).optional(),
  limit,
  after: digits.optional(),
});
const eventQuery = z.object({ status: z.string().min(1).optional(), limit, after: z.string().min(1).optional() });
const deliveryQuery = z.object({
  type: z.string().min(1).optional(),
  outcome: z.enum(reply.outcomes).optional(),
  limit,
  after: digits.optional(),
});
const newBroker = z.object({
  username: z.string().trim().min(1).max(200),
  password: z.string().min(8, 'must be at least 8 characters').max(1000),
});

const idParam = z.object({ id: z.string() });

export const inventoryRoutes = [
  describeRoute({ method: 'get', path: '/api/listings', summary: 'Listings, oldest first, paged by `after`', query: listingQuery,
    replies: { 200: pageOf(reply.listingSummary) } }),
  describeRoute({ method: 'get', path: '/api/listings/:id', summary: 'One listing', params: idParam, replies: { 200: reply.listing } }),
  describeRoute({ method: 'get', path: '/api/listings/:id/ledger', summary: 'Every change of the listing\'s quantity, with the delivery that made it',
    params: idParam, replies: { 200: pageOf(reply.quantityChange) } }),
  describeRoute({ method: 'get', path: '/api/events', summary: 'Events', query: eventQuery, replies: { 200: pageOf(reply.eventSummary) } }),
  describeRoute({ method: 'get', path: '/api/events/:id', summary: 'One event with its listings', params: idParam,
    replies: { 200: reply.eventWithListings } }),
  describeRoute({ method: 'get', path: '/api/deliveries', summary: 'The webhook log', query: deliveryQuery,
    replies: { 200: pageOf(reply.deliverySummary) } }),
  describeRoute({ method: 'get', path: '/api/deliveries/:id', summary: 'One delivery with its headers and body (up to 1 MB)', params: idParam,
    replies: { 200: reply.delivery } }),
  describeRoute({ method: 'post', path: '/api/deliveries/:id/replay', summary: 'Apply a stored delivery again; 409 for applied ones',
    params: idParam, replies: { 200: reply.replayResult } }),
  describeRoute({ method: 'post', path: '/api/brokers', summary: 'Create a broker account checked by broker.authenticate', body: newBroker,
    replies: { 201: reply.broker } }),
  describeRoute({ method: 'get', path: '/api/stats', summary: 'Storage: the database\'s size against DATABASE_SIZE_LIMIT, the largest tables, body retention',
    replies: { 200: reply.storageStats } }),
];

function page(items: readonly Record<string, unknown>[], limit: number) {
  const last = items[items.length - 1];
  return { items, next: items.length === limit && last ? String(last.id) : null };
}

function deliveryView(row: Record<string, unknown>) {
  const { body, ...rest } = row as { body?: Buffer | null } & Record<string, unknown>;
  if (!body) return { ...rest, body: null };
  return body.length <= MAX_INLINE_BODY
    ? { ...rest, body: body.toString('utf8') }
    : { ...rest, body: null, body_truncated: true };
}

export function apiRouter(deps: { sql: Sql; config: Config; authFailures: FailedAuthThrottle }): express.Router {
  const { sql, config } = deps;
  const router = express.Router();
  router.use('/api', apiGate(config.API_TOKEN, deps.authFailures));

  const route = (h: AsyncHandler) => asyncRoute(h);
  const notFound = (res: Response, what: string) => sendError(res, 404, `${what} not found`);

  router.get('/api/listings', route(async (req, res) => {
    const q = parseInput(listingQuery, req.query, 'query');
    const rows = await listListings(sql, { eventId: q.event_id, brokerId: q.broker_id, status: q.status, limit: q.limit, after: q.after });
    res.json(page(rows, q.limit));
  }));

  router.get('/api/listings/:id', route(async (req, res) => {
    const row = await getListing(sql, String(req.params.id));
    if (!row) return notFound(res, `listing ${String(req.params.id)}`);
    res.json(row);
  }));

  router.get('/api/listings/:id/ledger', route(async (req, res) => {
    const id = String(req.params.id);
    if (!isListingId(id) || !(await getListing(sql, id))) return notFound(res, `listing ${id}`);
    res.json({ items: await quantityChanges(sql, id), next: null });
  }));

  router.get('/api/events', route(async (req, res) => {
    const q = parseInput(eventQuery, req.query, 'query');
    res.json(page(await listEvents(sql, q), q.limit));
  }));

  router.get('/api/events/:id', route(async (req, res) => {
    const id = String(req.params.id);
    const event = await getEvent(sql, id);
    if (!event) return notFound(res, `event ${id}`);
    res.json({ ...event, listings: await listingsOfEvent(sql, id) });
  }));

  router.get('/api/deliveries', route(async (req, res) => {
    const q = parseInput(deliveryQuery, req.query, 'query');
    res.json(page(await listDeliveries(sql, q), q.limit));
  }));

  router.get('/api/deliveries/:id', route(async (req, res) => {
    const id = String(req.params.id);
    const row = /^\d{1,18}$/.test(id) ? await getDelivery(sql, id) : undefined;
    if (!row) return notFound(res, `delivery ${id}`);
    res.json(deliveryView(row));
  }));

  router.post('/api/deliveries/:id/replay', route(async (req, res) => {
    const id = String(req.params.id);
    const row = /^\d{1,18}$/.test(id) ? await getDelivery(sql, id) : undefined;
    if (!row) return notFound(res, `delivery ${id}`);
    if (row.outcome === 'applied' || row.outcome === 'duplicate') {
      return sendError(res, 409, `delivery ${id} was ${String(row.outcome)}; replaying it would apply it twice`);
    }
    if (row.redacted) return sendError(res, 409, `delivery ${id} had secrets redacted before it was stored; it cannot be replayed`);
    const replayedAlready = (replay: string | undefined) =>
      sendError(res, 409, `delivery ${id} was replayed already${replay ? ` (delivery ${replay})` : ''}; a delivery is replayed at most once (replay that one if it needs another try)`);
    const earlier = await replayOf(sql, id);
    if (earlier) return replayedAlready(earlier);
    // The bytes received: stored, or rebuilt from the ticket PDF that replaced the body's file.
    const body = await receivedBody(sql, row);
    if (typeof body === 'string') return sendError(res, 409, `delivery ${id} cannot be replayed: ${body}`);
    const headers = row.headers as Record<string, string>;
    let result: ProcessedDelivery;
    try {
      result = await processDelivery({ sql, config }, {
        raw: body.raw, versionHeader: String(row.version), contentType: headers['content-type'],
        path: String(row.path), headers, replayOf: id,
      });
    } catch (err) {
      if (isAlreadyReplayed(err)) return replayedAlready(await replayOf(sql, id));
      throw err;
    }
    res.json({
      id: result.deliveryId, replay_of: id, type: result.type, version: result.version,
      outcome: result.outcome, status: result.status, reply: result.reply, body_rebuilt_from_ticket: body.fromTicket,
    });
  }));

  router.get('/api/stats', route(async (_req, res) => {
    res.json(await storageStats(sql, config));
  }));

  router.post('/api/brokers', route(async (req, res) => {
    const b = parseInput(newBroker, req.body ?? {}, 'body');
    try {
      res.status(201).json(await createBroker(sql, b.username, b.password));
    } catch (err) {
      if (err instanceof UsernameTaken) return sendError(res, 409, err.message);
      throw err;
    }
  }));

  return router;
}
