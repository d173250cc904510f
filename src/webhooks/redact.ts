// Secrets never reach the delivery log: broker.authenticate carries a broker's password in
// cleartext. Any field whose parsed key names a password (any case, whatever escapes spell it:
// "pass\u0077ord" is "password") is replaced before the body is stored.
import { JsonStringBytes, materializeStrings, type JsonBody } from '../json-bytes.js';

const MARK = '[redacted]';
const isSecretKey = (key: string) => key.toLowerCase().includes('password');

/** Whether any key of the parsed body names a password. (Bodies are at most MAX_JSON_DEPTH deep.) */
function hasSecretKey(value: unknown): boolean {
  if (value instanceof JsonStringBytes || !value || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(hasSecretKey);
  return Object.entries(value).some(([k, v]) => isSecretKey(k) || hasSecretKey(v));
}

function redactValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactValue);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSecretKey(k) ? MARK : redactValue(v)]));
  }
  return value;
}

/** A body that is not JSON cannot be told apart into keys: everything from the first mention of
 * a password on (\uXXXX escapes decoded, any case) is dropped. */
function cutAtPassword(raw: Buffer): { body: Buffer; redacted: boolean } {
  const text = raw.toString('utf8').replace(/\\u([0-9a-fA-F]{4})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const at = text.toLowerCase().indexOf('password');
  if (at === -1) return { body: raw, redacted: false };
  return { body: Buffer.from(`${text.slice(0, at)}${MARK}`), redacted: true };
}

/** The body to store, given the body as read (readJsonBody). Bodies without a password key are
 * returned as they are, byte for byte; others are re-serialized with the secret replaced. */
export function redactSecrets(raw: Buffer, json: JsonBody): { body: Buffer; redacted: boolean } {
  if (!json.ok) return cutAtPassword(raw);
  if (!hasSecretKey(json.value)) return { body: raw, redacted: false };
  try {
    return { body: Buffer.from(JSON.stringify(redactValue(materializeStrings(json.value)))), redacted: true };
  } catch {
    return cutAtPassword(raw); // a large string that is not valid JSON: the body is refused anyway
  }
}
