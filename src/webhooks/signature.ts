// X-Tixstock-Signature: hex HMAC-SHA256 of the raw request body, keyed with the reseller's
// bearer token. Verified over the exact bytes received (Tixstock's PHP sender escapes "/" as
// "\/": re-serializing parsed JSON would change the bytes), in constant time, against every
// configured token so that a token can be rotated without downtime.
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

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

/** The body's HMAC under every configured token, fed as the body arrives: a body of tens of MB
 * is then never hashed in one step that blocks every other webhook. */
export function signatureVerifier(tokens: readonly string[]) {
  const hmacs = keysOf(tokens).map((key) => createHmac('sha256', key));
  return {
    update(chunk: Buffer): void {
      for (const h of hmacs) h.update(chunk);
    },
    verify(given: Buffer): SignatureCheck {
      let match = false;
      // No early exit: every token is checked, whichever matches.
      for (const h of hmacs) if (timingSafeEqual(h.digest(), given)) match = true;
      return match ? { ok: true } : { ok: false, reason: 'X-Tixstock-Signature does not match the body' };
    },
  };
}

/** The tokens as keys, made once per list (the configuration's): a string key is converted on
 * every createHmac, a KeyObject is not. */
const keys = new WeakMap<readonly string[], KeyObject[]>();
function keysOf(tokens: readonly string[]): KeyObject[] {
  let k = keys.get(tokens);
  if (!k) keys.set(tokens, (k = tokens.map((token) => createSecretKey(Buffer.from(token, 'utf8')))));
  return k;
}

export function verifySignature(body: Buffer, header: string | undefined, tokens: readonly string[]): SignatureCheck {
  const parsed = parseSignatureHeader(header);
  if (!parsed.ok) return parsed;
  const verifier = signatureVerifier(tokens);
  verifier.update(body);
  return verifier.verify(parsed.given);
}
