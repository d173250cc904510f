// Bearer API_TOKEN for /api/* (the reseller's inventory backend and scripts).
import type { NextFunction, Request, Response } from 'express';
import { authenticationFailed, refusedAsThrottled, type FailedAuthThrottle } from '../auth-throttle.js';
import { safeEqual, sendError } from '../http.js';

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
