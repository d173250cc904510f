// X-Tixstock-Signature: hex HMAC-SHA256 of the raw request body, keyed with the reseller's
// bearer token. Verified over the exact bytes received (Tixstock's PHP sender escapes "/" as
// "\/": re-serializing parsed JSON would change the bytes), in constant time, against every
// configured token so that a token can be rotated without downtime.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function sign(body: Buffer | string, token: string): string {
  return createHmac('sha256', token).update(body).digest('hex');
}

export function verifySignature(body: Buffer, header: string | undefined, tokens: readonly string[]): SignatureCheck {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'X-Tixstock-Signature header is missing' };
  const given = header.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(given)) {
    return { ok: false, reason: 'X-Tixstock-Signature is malformed: expected 64 hex characters (HMAC-SHA256)' };
  }
  const givenBytes = Buffer.from(given, 'hex');
  let match = false;
  for (const token of tokens) {
    // No early exit: every token is checked, whichever matches.
    const expected = createHmac('sha256', token).update(body).digest();
    if (timingSafeEqual(expected, givenBytes)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'X-Tixstock-Signature does not match the body' };
}
