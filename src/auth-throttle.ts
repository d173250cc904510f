// Failed authentications counted per client (an IP address, or a broker's user name), so that
// guessing a token or a password costs time: after `limit` failures within a window, the client
// is refused until the window ends. Counted in this process only: a rate limit on guessing, not
// a correctness invariant, so each dyno keeping its own count (N dynos allow N times the limit)
// is enough, and a refusal costs no database work.
import type { Request, Response } from 'express';
import { sendError } from './http.js';
import { log } from './log.js';

export class FailedAuthThrottle {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    readonly limit: number,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
    /** Clients remembered at most; beyond that the longest-remembered one is forgotten. */
    private readonly maxClients = 10_000,
  ) {}

  /** Seconds until `client` may try again, or 0 when it may now. */
  retryAfter(client: string): number {
    const f = this.current(client);
    if (!f || f.count < this.limit) return 0;
    return Math.max(1, Math.ceil((f.since + this.windowMs - this.now()) / 1000));
  }

  /** Counts a failure of `client`; returns its failures in the current window. */
  failed(client: string): number {
    const f = this.current(client) ?? { count: 0, since: this.now() };
    f.count++;
    this.failures.set(client, f);
    if (this.failures.size > this.maxClients) this.failures.delete(this.failures.keys().next().value!);
    return f.count;
  }

  private current(client: string) {
    const f = this.failures.get(client);
    if (f && this.now() - f.since >= this.windowMs) {
      this.failures.delete(client);
      return undefined;
    }
    return f;
  }
}

/** The client of an HTTP request: its address as the router saw it (express `trust proxy` is set
 * for Heroku's one hop, so this is the last X-Forwarded-For entry, not one the client wrote). */
const clientOf = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown';

/** Answers 429 with Retry-After when the request's client has failed too often; true if it did. */
export function refusedAsThrottled(throttle: FailedAuthThrottle, req: Request, res: Response): boolean {
  const wait = throttle.retryAfter(clientOf(req));
  if (wait === 0) return false;
  sendError(res, 429, `too many failed authentication attempts from this client; retry in ${wait} s`, undefined, {
    'Retry-After': String(wait),
  });
  return true;
}

/** Counts and logs a failed authentication of the request's client (never what it sent). */
export function authenticationFailed(throttle: FailedAuthThrottle, req: Request, what: string): void {
  const client = clientOf(req);
  const failures = throttle.failed(client);
  log.warn('authentication failed', { what, client, method: req.method, path: req.path, failures, limit: throttle.limit });
}
