// HTTP Basic for /support (user "support", password SUPPORT_PASSWORD), and the token that
// proves a form was posted from our own page: a browser sends Basic credentials with any
// site's cross-site POST, so the credentials alone do not prove intent.
import { createHmac } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { authenticationFailed, refusedAsThrottled, type FailedAuthThrottle } from '../auth-throttle.js';
import { safeEqual, sendError } from '../http.js';

export const SUPPORT_USER = 'support';

export function requireSupportLogin(password: string | undefined, failures: FailedAuthThrottle) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!password) return sendError(res, 503, 'the support page is disabled: SUPPORT_PASSWORD is not configured');
    if (refusedAsThrottled(failures, req, res)) return;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(req.get('authorization') ?? '');
    const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = colon >= 0 ? decoded.slice(0, colon) : '';
    const pass = colon >= 0 ? decoded.slice(colon + 1) : '';
    // Both compared, always, so timing does not tell which one was wrong.
    const okUser = safeEqual(user, SUPPORT_USER);
    const okPass = safeEqual(pass, password);
    if (!okUser || !okPass) {
      // A browser asks for the password with a first request that carries none: not a guess.
      if (m) authenticationFailed(failures, req, 'support password');
      res.set('WWW-Authenticate', 'Basic realm="Tixstock support", charset="UTF-8"');
      return sendError(res, 401, 'log in as "support" with SUPPORT_PASSWORD');
    }
    next();
  };
}

export function formToken(password: string): string {
  return createHmac('sha256', password).update('tixstock support form').digest('hex');
}

/** True when a form POST came from our page: the right token, and (if the browser says where
 * it came from) our own origin. */
export function isOwnForm(req: Request, password: string): boolean {
  const origin = req.get('origin');
  if (origin !== undefined) {
    // "null" (sandboxed frames, data: URLs) is not ours either
    try {
      if (new URL(origin).host !== req.get('host')) return false;
    } catch {
      return false;
    }
  }
  const token = (req.body as Record<string, unknown> | undefined)?.csrf;
  return typeof token === 'string' && safeEqual(token, formToken(password));
}
