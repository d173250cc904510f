// Secrets never reach the delivery log: broker.authenticate carries a broker's password in
// cleartext. Any "password" field anywhere in a body is replaced before the body is stored.
const MARK = '[redacted]';
const PASSWORD_KEY = Buffer.from('"password"');

function redactValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactValue);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, k.toLowerCase() === 'password' ? MARK : redactValue(v)]),
    );
  }
  return value;
}

/** The body to store. Bodies without a "password" key are returned as they are (the common
 * case costs one byte search); others are re-serialized with the secret replaced, or, when
 * they are not JSON, scrubbed textually. */
export function redactSecrets(raw: Buffer): { body: Buffer; redacted: boolean } {
  if (!raw.includes(PASSWORD_KEY)) return { body: raw, redacted: false };
  const text = raw.toString('utf8');
  try {
    return { body: Buffer.from(JSON.stringify(redactValue(JSON.parse(text)))), redacted: true };
  } catch {
    const scrubbed = text.replace(/("password"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]]*)/g, `$1"${MARK}"`);
    return { body: Buffer.from(scrubbed), redacted: true };
  }
}
