// X-Tixstock-Signature: hex HMAC-SHA256 of the raw request body, keyed with the reseller's
// bearer token. Verified over the exact bytes received (Tixstock's PHP sender escapes "/" as
// "\/": re-serializing parsed JSON would change the bytes), in constant time, against every
// configured token so that a token can be rotated without downtime.
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function sign(body: Buffer | string, token: string): string {
  return createHmac('sha256', token).update(body).digest('hex');
}

export type SignatureHeader = { ok: true; given: Buffer } | { ok: false; reason: string };

/** The header alone, before any of the body is read: a missing or malformed one is refused at
 * once, so an unsigned upload costs us nothing but its headers. */
export function parseSignatureHeader(header: string | undefined): SignatureHeader {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'X-Tixstock-Signature header is missing' };
  const given = header.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(given)) {
    return { ok: false, reason: 'X-Tixstock-Signature is malformed: expected 64 hex characters (HMAC-SHA256)' };
  }
  return { ok: true, given: Buffer.from(given, 'hex') };
}

export function verifySignature(body: Buffer, header: string | undefined, tokens: readonly string[]): SignatureCheck {
  const parsed = parseSignatureHeader(header);
  if (!parsed.ok) return parsed;
  let match = false;
  for (const token of tokens) {
    // No early exit: every token is checked, whichever matches.
    const expected = createHmac('sha256', token).update(body).digest();
    if (timingSafeEqual(expected, parsed.given)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'X-Tixstock-Signature does not match the body' };
}
