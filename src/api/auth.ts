// Bearer API_TOKEN for /api/* (the reseller's inventory backend and scripts).
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { authenticationFailed, refusedAsThrottled, type FailedAuthThrottle } from '../auth-throttle.js';
import { refuseNul, safeEqual, sendError } from '../http.js';

export function requireApiToken(token: string | undefined, failures: FailedAuthThrottle) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!token) return sendError(res, 503, 'the API is disabled: API_TOKEN is not configured');
    if (refusedAsThrottled(failures, req, res)) return;
    const m = /^Bearer\s+(.+)$/i.exec(req.get('authorization') ?? '');
    if (!m || !safeEqual(m[1]!.trim(), token)) {
      if (m) authenticationFailed(failures, req, 'api token'); // a request without a token guesses nothing
      res.set('WWW-Authenticate', 'Bearer');
      return sendError(res, 401, 'missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)');
    }
    next();
  };
}

/** Requests that passed an apiGate already: several routers serve /api/*, and the first one's
 * gate does the work for all of them. */
const passed = new WeakSet<Request>();

/** What every /api/* route needs first: the bearer token, a JSON body (up to 100 kB), no NUL
 * character in the input. Run once per request, whichever router's gate it meets first. */
export function apiGate(token: string | undefined, failures: FailedAuthThrottle): RequestHandler {
  const steps = [requireApiToken(token, failures), express.json({ limit: '100kb' }), refuseNul()];
  return (req, res, next) => {
    if (passed.has(req)) return next();
    const step = (i: number) => (err?: unknown) => {
      if (err) return next(err);
      if (i === steps.length) {
        passed.add(req);
        return next();
      }
      steps[i]!(req, res, step(i + 1));
    };
    step(0)();
  };
}
