// /api/listings, /api/events, /api/brokers, /api/stats: read access to the inventory, broker accounts, storage.
import express from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { storageStats } from '../db/stats.js';
import { asyncRoute, parseInput, sendError, sendNotFound } from '../http.js';
import { numericId } from '../ids.js';
import { createBroker, UsernameTaken } from '../inventory/brokers.js';
import { getEvent, listEvents } from '../inventory/events.js';
import { getListing, isListingId, listingsOfEvent, listListings, quantityChanges } from '../inventory/listings.js';
import { describeRoute, idParam, listPage, pageLimit, pageOf } from '../route-doc.js';
import * as reply from '../replies.js';

const limit = pageLimit();
const digits = numericId();
const listingQuery = z.object({
  event_id: z.string().min(1).optional(),
  broker_id: z.string().min(1).optional(),
  status: z.enum(['published', 'deleted']).optional(),
  limit,
  after: digits.optional(),
});
const eventQuery = z.object({ status: z.string().min(1).optional(), limit, after: z.string().min(1).optional() });
const newBroker = z.object({
  username: z.string().trim().min(1).max(200),
  password: z.string().min(8, 'must be at least 8 characters').max(1000),
});

export const inventoryRoutes = [
  describeRoute({
    method: 'get',
    path: '/api/listings',
    summary: 'Listings, oldest first, paged by `after`',
    query: listingQuery,
    replies: { 200: pageOf(reply.listingSummary) },
  }),
  describeRoute({
    method: 'get',
    path: '/api/listings/:id',
    summary: 'One listing',
    params: idParam,
    replies: { 200: reply.listing },
  }),
  describeRoute({
    method: 'get',
    path: '/api/listings/:id/ledger',
    summary: "Every change of the listing's quantity, with the delivery that made it",
    params: idParam,
    replies: { 200: pageOf(reply.quantityChange) },
  }),
  describeRoute({
    method: 'get',
    path: '/api/events',
    summary: 'Events',
    query: eventQuery,
    replies: { 200: pageOf(reply.eventSummary) },
  }),
  describeRoute({
    method: 'get',
    path: '/api/events/:id',
    summary: 'One event with its listings',
    params: idParam,
    replies: { 200: reply.eventWithListings },
  }),
  describeRoute({
    method: 'post',
    path: '/api/brokers',
    summary: 'Create a broker account checked by broker.authenticate',
    body: newBroker,
    replies: { 201: reply.broker },
  }),
  describeRoute({
    method: 'get',
    path: '/api/stats',
    summary: "Storage: the database's size against DATABASE_SIZE_LIMIT, the largest tables, body retention",
    replies: { 200: reply.storageStats },
  }),
];

export function inventoryRouter(deps: { sql: Sql; config: Config }): express.Router {
  const { sql, config } = deps;
  const router = express.Router();

  router.get(
    '/api/listings',
    asyncRoute(async (req, res) => {
      const q = parseInput(listingQuery, req.query, 'query');
      const rows = await listListings(sql, {
        eventId: q.event_id,
        brokerId: q.broker_id,
        status: q.status,
        limit: q.limit,
        after: q.after,
      });
      res.json(listPage(rows, q.limit));
    }),
  );

  router.get(
    '/api/listings/:id',
    asyncRoute(async (req, res) => {
      const row = await getListing(sql, String(req.params.id));
      if (!row) return sendNotFound(res, `listing ${String(req.params.id)}`);
      res.json(row);
    }),
  );

  router.get(
    '/api/listings/:id/ledger',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      if (!isListingId(id) || !(await getListing(sql, id))) return sendNotFound(res, `listing ${id}`);
      res.json({ items: await quantityChanges(sql, id), next: null });
    }),
  );

  router.get(
    '/api/events',
    asyncRoute(async (req, res) => {
      const q = parseInput(eventQuery, req.query, 'query');
      res.json(listPage(await listEvents(sql, q), q.limit));
    }),
  );

  router.get(
    '/api/events/:id',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const event = await getEvent(sql, id);
      if (!event) return sendNotFound(res, `event ${id}`);
      res.json({ ...event, listings: await listingsOfEvent(sql, id) });
    }),
  );

  router.get(
    '/api/stats',
    asyncRoute(async (_req, res) => {
      res.json(await storageStats(sql, config));
    }),
  );

  router.post(
    '/api/brokers',
    asyncRoute(async (req, res) => {
      const b = parseInput(newBroker, req.body ?? {}, 'body');
      try {
        res.status(201).json(await createBroker(sql, b.username, b.password));
      } catch (err) {
        if (err instanceof UsernameTaken) return sendError(res, 409, err.message);
        throw err;
      }
    }),
  );

  return router;
}
