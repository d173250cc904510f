// /api/reconciliations: start a reconciliation with Tixstock's tickets/get (it runs on after the
// answer: a run takes minutes at Tixstock's rate limit), list runs, one run with its differences.
import express from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { asyncRoute, parseInput, sendError } from '../http.js';
import { numericId } from '../ids.js';
import * as reply from '../replies.js';
import { describeRoute, idParam, pageLimit, pageOf } from '../route-doc.js';
import type { TixstockClient } from '../tixstock/contract.js';
import { runOptionsFrom, startRun } from './run.js';
import { getRun, listRuns, RunInProgress } from './runs.js';

const startBody = z.object({ repair: z.boolean().optional() }).strict();
const listQuery = z.object({
  limit: pageLimit(50),
  after: numericId().optional(),
});

export const reconciliationRoutes = [
  describeRoute({
    method: 'post',
    path: '/api/reconciliations',
    summary: 'Start a reconciliation with Tixstock (it runs on after the answer); 409 while one runs',
    body: startBody,
    replies: { 202: reply.reconciliationWithDifferences },
  }),
  describeRoute({
    method: 'get',
    path: '/api/reconciliations',
    summary: 'Reconciliation runs, newest first, paged by `after`',
    query: listQuery,
    replies: { 200: pageOf(reply.reconciliation) },
  }),
  describeRoute({
    method: 'get',
    path: '/api/reconciliations/:id',
    summary: 'One run with its differences',
    params: idParam,
    replies: { 200: reply.reconciliationWithDifferences },
  }),
];

export function reconciliationsRouter(deps: { sql: Sql; config: Config; tixstock?: TixstockClient }): express.Router {
  const { sql, config } = deps;
  const router = express.Router();

  router.post(
    '/api/reconciliations',
    asyncRoute(async (req, res) => {
      const body = parseInput(startBody, req.body ?? {}, 'body');
      if (!deps.tixstock) return sendError(res, 503, 'no Tixstock client is configured in this process');
      try {
        const { id } = await startRun(sql, deps.tixstock, {
          ...runOptionsFrom(config),
          repair: body.repair ?? config.RECONCILE_REPAIR,
          requestedBy: 'api',
        });
        res
          .status(202)
          .location(`/api/reconciliations/${id}`)
          .json(await getRun(sql, id));
      } catch (err) {
        if (err instanceof RunInProgress)
          return sendError(res, 409, err.message, [err.message, `running: /api/reconciliations/${err.runningId}`]);
        throw err;
      }
    }),
  );

  // Newest first; `after` is the last id of the previous page.
  router.get(
    '/api/reconciliations',
    asyncRoute(async (req, res) => {
      const q = parseInput(listQuery, req.query, 'query');
      const items = await listRuns(sql, { limit: q.limit, before: q.after });
      res.json({ items, next: items.length === q.limit ? items[items.length - 1]!.id : null });
    }),
  );

  router.get(
    '/api/reconciliations/:id',
    asyncRoute(async (req, res) => {
      const run = await getRun(sql, String(req.params.id));
      if (!run) return sendError(res, 404, `reconciliation ${String(req.params.id)} not found`);
      res.json(run);
    }),
  );

  return router;
}
