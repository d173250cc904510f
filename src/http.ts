// Small helpers shared by every route: JSON errors in one shape, async routes, input parsing,
// constant-time comparison.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';

/** A JSON answer, on plain node:http (the webhook receiver) as on express (its Response is a
 * ServerResponse): headers set before with setHeader / res.set are kept. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** `{"success": false, "message": "...", "errors": [...]}` with the given status. */
export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  errors: string[] = [message],
  headers?: Record<string, string>,
): void {
  sendJson(res, status, { success: false, message, errors }, headers);
}

/** 404 `{what} not found`. */
export const sendNotFound = (res: ServerResponse, what: string): void => sendError(res, 404, `${what} not found`);

/** Bad input, answered 400 by asyncRoute with every problem named. */
export class BadRequest extends Error {
  constructor(
    readonly errors: string[],
    hint = '',
  ) {
    super(errors.join('; ') + hint);
  }
}

/** Parses request input with a zod schema; problems are named by path ("query.limit: ..."). */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: string, hint = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success)
    throw new BadRequest(
      r.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`),
      hint,
    );
  return r.data;
}

export type AsyncHandler = (req: Request, res: Response) => Promise<unknown>;

/** Runs an async route: BadRequest becomes 400; anything else goes to the error handlers (app.ts
 * answers "database unavailable" 503 + Retry-After, the support page its own page). */
export function asyncRoute(h: AsyncHandler) {
  return async (req: Request, res: Response) => {
    try {
      await h(req, res);
    } catch (err) {
      if (err instanceof BadRequest) return sendError(res, 400, `bad request: ${err.message}`, err.errors);
      throw err;
    }
  };
}

/** The request's id: Heroku's router sends X-Request-ID (a UUID, or the client's own of 20 to
 * 200 characters); anything else, or none, gets a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w\-.:@+=/]{1,200}$/.test(given) ? given : randomUUID();
}

/** Constant-time string comparison (hashing first makes lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The path ("data.name", "query.event_id") of the first string, key included, that holds a NUL
 * character, which PostgreSQL cannot store in text or jsonb. Iterative, so that no nesting
 * depth can exhaust the stack; values that are not plain data (e.g. lifted byte views) are skipped. */
export function findNul(value: unknown, where = ''): string | undefined {
  const stack: [unknown, string][] = [[value, where]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => {
        stack.push([item, `${path}[${i}]`]);
      });
    } else if (v && typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
      for (const [k, item] of Object.entries(v)) {
        const at = path === '' ? k : `${path}.${k}`;
        if (k.includes('\u0000')) return at;
        stack.push([item, at]);
      }
    }
  }
  return undefined;
}

/** Express middleware for every route that takes input: a NUL character in the path, the query
 * or the body is answered 400 here (JSON, or as `refuse` renders it), instead of failing in
 * PostgreSQL (as a 500). */
export function refuseNul(refuse: (res: Response, message: string) => void = (res, message) => sendError(res, 400, message)) {
  return (req: Request, res: Response, next: NextFunction): void => {
    let path: string | undefined;
    try {
      if (decodeURIComponent(req.path).includes('\u0000')) path = 'path';
    } catch {
      // a malformed escape names nothing: the route answers 404 or 400
    }
    path ??= findNul(req.query, 'query') ?? findNul(req.body, 'body');
    if (path === undefined) {
      next();
      return;
    }
    refuse(res, `bad request: ${path} contains a NUL character (\\u0000), which is not accepted`);
  };
}
