// Small helpers shared by every route: JSON errors in one shape, and bearer/basic checks.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Response } from 'express';

/** `{"success": false, "message": "...", "errors": [...]}` with the given status. */
export function sendError(res: Response, status: number, message: string, errors: string[] = [message]): void {
  res.status(status).json({ success: false, message, errors });
}

/** Constant-time string comparison (hashing first makes lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
