// /api/deliveries: the webhook log, one delivery with its body, and replaying a stored delivery.
import express from 'express';
import { z } from 'zod';
import { asyncRoute, parseInput, sendError, sendNotFound } from '../http.js';
import { isNumericId, numericId } from '../ids.js';
import { OUTCOMES } from '../replies.js';
import * as reply from '../replies.js';
import { describeRoute, idParam, listPage, pageLimit, pageOf } from '../route-doc.js';
import { getDelivery, isAlreadyReplayed, listDeliveries, receivedBody, replayOf } from './deliveries.js';
import { type PipelineDeps, processDelivery, type ProcessedDelivery } from './process.js';

const MAX_INLINE_BODY = 1024 * 1024;

const deliveryQuery = z.object({
  type: z.string().min(1).optional(),
  outcome: z.enum(OUTCOMES).optional(),
  limit: pageLimit(),
  after: numericId().optional(),
});

export const deliveryRoutes = [
  describeRoute({
    method: 'get',
    path: '/api/deliveries',
    summary: 'The webhook log',
    query: deliveryQuery,
    replies: { 200: pageOf(reply.deliverySummary) },
  }),
  describeRoute({
    method: 'get',
    path: '/api/deliveries/:id',
    summary: 'One delivery with its headers and body (up to 1 MB)',
    params: idParam,
    replies: { 200: reply.delivery },
  }),
  describeRoute({
    method: 'post',
    path: '/api/deliveries/:id/replay',
    summary: 'Apply a stored delivery again; 409 for applied ones',
    params: idParam,
    replies: { 200: reply.replayResult },
  }),
];

function deliveryView(row: Record<string, unknown>) {
  const { body, ...rest } = row as { body?: Buffer | null } & Record<string, unknown>;
  if (!body) return { ...rest, body: null };
  return body.length <= MAX_INLINE_BODY
    ? { ...rest, body: body.toString('utf8') }
    : { ...rest, body: null, body_truncated: true };
}

export function deliveriesRouter(deps: PipelineDeps): express.Router {
  const { sql } = deps;
  const router = express.Router();

  router.get(
    '/api/deliveries',
    asyncRoute(async (req, res) => {
      const q = parseInput(deliveryQuery, req.query, 'query');
      res.json(listPage(await listDeliveries(sql, q), q.limit));
    }),
  );

  router.get(
    '/api/deliveries/:id',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const row = isNumericId(id) ? await getDelivery(sql, id) : undefined;
      if (!row) return sendNotFound(res, `delivery ${id}`);
      res.json(deliveryView(row));
    }),
  );

  router.post(
    '/api/deliveries/:id/replay',
    asyncRoute(async (req, res) => {
      const id = String(req.params.id);
      const row = isNumericId(id) ? await getDelivery(sql, id) : undefined;
      if (!row) return sendNotFound(res, `delivery ${id}`);
      if (row.outcome === 'applied' || row.outcome === 'duplicate') {
        return sendError(res, 409, `delivery ${id} was ${String(row.outcome)}; replaying it would apply it twice`);
      }
      if (row.redacted)
        return sendError(res, 409, `delivery ${id} had secrets redacted before it was stored; it cannot be replayed`);
      const replayedAlready = (replay: string | undefined) =>
        sendError(
          res,
          409,
          `delivery ${id} was replayed already${replay ? ` (delivery ${replay})` : ''}; a delivery is replayed at most once (replay that one if it needs another try)`,
        );
      const earlier = await replayOf(sql, id);
      if (earlier) return replayedAlready(earlier);
      // The bytes received: stored, or rebuilt from the ticket PDF that replaced the body's file.
      const body = await receivedBody(sql, row);
      if (typeof body === 'string') return sendError(res, 409, `delivery ${id} cannot be replayed: ${body}`);
      const headers = row.headers as Record<string, string>;
      let result: ProcessedDelivery;
      try {
        result = await processDelivery(deps, {
          raw: body.raw,
          versionHeader: String(row.version),
          contentType: headers['content-type'],
          path: String(row.path),
          headers,
          replayOf: id,
        });
      } catch (err) {
        if (isAlreadyReplayed(err)) return replayedAlready(await replayOf(sql, id));
        throw err;
      }
      res.json({
        id: result.deliveryId,
        replay_of: id,
        type: result.type,
        version: result.version,
        outcome: result.outcome,
        status: result.status,
        reply: result.reply,
        body_rebuilt_from_ticket: body.fromTicket,
      });
    }),
  );

  return router;
}
