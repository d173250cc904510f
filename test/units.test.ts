// Pure functions: configuration parsing, money arithmetic, signatures, redaction.
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../src/config.js';
import { sslFor } from '../src/db/connect.js';
import { isDevelopment } from '../src/dev.js';
import { applyMarkup, normalizeAmount } from '../src/money.js';
import { JsonStringBytes, parseJsonLifting, readJsonBody } from '../src/json-bytes.js';
import { decodeBase64Strict } from '../src/tickets/check.js';
import { redactSecrets as redactParsed } from '../src/webhooks/redact.js';
import { sign, verifySignature } from '../src/webhooks/signature.js';

describe('units', () => {
  describe('config', () => {
    it('is in development mode only off production and with the database on this machine', () => {
      const remote = 'postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d';
      assert.equal(isDevelopment({ NODE_ENV: 'development', DATABASE_URL: undefined }), true);
      assert.equal(isDevelopment({ NODE_ENV: 'development', DATABASE_URL: 'postgres://u@127.0.0.1:5432/d' }), true);
      assert.equal(
        isDevelopment({ NODE_ENV: 'development', DATABASE_URL: remote }),
        false,
        'a deployment whose NODE_ENV was lost',
      );
      assert.equal(isDevelopment({ NODE_ENV: 'production', DATABASE_URL: undefined }), false);
    });

    it('has documented defaults', () => {
      const c = loadConfig({});
      assert.equal(c.PORT, 3000);
      assert.equal(c.WEBHOOK_BODY_LIMIT, 50 * 1024 * 1024);
      assert.equal(c.DISPLAY_PRICE_MARKUP_PERCENT, '0');
      assert.deepEqual(c.TIXSTOCK_BEARER_TOKEN, []);
      assert.equal(c.WEBHOOK_CONCURRENCY, c.DATABASE_POOL_SIZE);
      assert.equal(c.WEBHOOK_MEMORY_LIMIT, 128 * 1024 * 1024);
      assert.equal(c.WEBHOOK_MIN_UPLOAD_RATE, 100 * 1024);
    });

    it('splits rotated tokens', () => {
      assert.deepEqual(loadConfig({ TIXSTOCK_BEARER_TOKEN: 'a, b,,c ' }).TIXSTOCK_BEARER_TOKEN, ['a', 'b', 'c']);
    });

    it('names the variable of a wrong value', () => {
      for (const [k, v] of [
        ['PORT', 'eighty'],
        ['WEBHOOK_BODY_LIMIT', 'lots'],
        ['DISPLAY_PRICE_MARKUP_PERCENT', '10%'],
        ['DATABASE_POOL_SIZE', '0'],
        ['WEBHOOK_MEMORY_LIMIT', 'lots'],
        ['WEBHOOK_MEMORY_LIMIT', '10mb'],
        ['WEBHOOK_MIN_UPLOAD_RATE', '-1'],
      ]) {
        assert.throws(
          () => loadConfig({ [k!]: v }),
          (e: Error) => e instanceof ConfigError && e.message.includes(k!),
          k,
        );
      }
    });
  });

  describe('money', () => {
    it('normalizes amounts exactly', () => {
      assert.equal(normalizeAmount('100'), '100.00');
      assert.equal(normalizeAmount('007.5'), '7.50');
      assert.equal(normalizeAmount('0.125'), '0.125');
    });

    it('applies the markup with exact decimal arithmetic, half up', () => {
      assert.equal(applyMarkup('59.00', '0'), '59.00');
      assert.equal(applyMarkup('59.00', '10'), '64.90');
      assert.equal(applyMarkup('59.10', '12.5'), '66.49'); // 66.4875; floats give 66.48749999...
      assert.equal(applyMarkup('0.10', '5'), '0.11'); // 0.105 rounds up
      assert.equal(applyMarkup('99999999999.99', '100'), '199999999999.98');
      assert.equal(applyMarkup('10', '-10'), '9.00');
    });
  });

  describe('signature', () => {
    const body = Buffer.from('{"data":{"url":"https:\\/\\/x"},"meta":{"type":"t"}}');
    it('accepts the HMAC of the exact bytes with any configured token', () => {
      assert.deepEqual(verifySignature(body, sign(body, 'k2'), ['k1', 'k2']), { ok: true });
      assert.equal(verifySignature(body, sign(body, 'k3'), ['k1', 'k2']).ok, false);
      assert.equal(verifySignature(body, ` ${sign(body, 'k1').toUpperCase()} `, ['k1']).ok, true);
      assert.equal(verifySignature(body, sign(body, 'k1').slice(1), ['k1']).ok, false);
      assert.equal(verifySignature(body, undefined, ['k1']).ok, false);
    });
  });

  describe('redaction', () => {
    const redactSecrets = (raw: Buffer) => redactParsed(raw, readJsonBody(raw));
    it('replaces every password field and leaves other bodies untouched', () => {
      const plain = Buffer.from('{"data":{"a":1}}');
      assert.equal(redactSecrets(plain).body, plain);
      const r = redactSecrets(Buffer.from('{"data":{"username":"u","password":"p\\"w","nested":[{"password":"x"}]}}'));
      assert.equal(r.redacted, true);
      assert.equal(r.body.toString(), '{"data":{"username":"u","password":"[redacted]","nested":[{"password":"[redacted]"}]}}');
    });
  });

  describe('database TLS', () => {
    it('requires TLS unless the host is local', () => {
      assert.equal(sslFor('postgres://u:p@127.0.0.1:5432/db'), false);
      assert.equal(sslFor('postgres://u:p@localhost/db'), false);
      assert.equal(sslFor('postgres://u:p@ec2-1-2-3-4.compute-1.amazonaws.com:5432/d8'), 'require');
    });
  });

  describe('strict base64 (ticket files)', () => {
    // The rule, written plainly: PHP's alphabet, padded, canonical. The decoder takes a faster
    // route; it must agree with this on every input.
    const strictly = (t: string) =>
      t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t) && Buffer.from(t, 'base64').toString('base64') === t;

    it('accepts what an encoder writes and returns its bytes', () => {
      for (const n of [0, 1, 2, 3, 4, 5, 100, 1001]) {
        const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) % 256));
        assert.deepEqual(decodeBase64Strict(bytes.toString('base64')), bytes);
      }
    });

    it('refuses, with a reason, everything else', () => {
      for (const bad of ['QUJD-EFG', 'QUJD_EFG', 'QQ==QUJD', 'QU=D', 'QUJ\nQUJD', 'QU D', 'QR==', 'QUI=QUI=', '====', 'QUJDQ']) {
        const r = decodeBase64Strict(bad);
        assert.equal(typeof r, 'string', bad);
      }
    });

    it('agrees with the plain rule on 20,000 random near-base64 strings', () => {
      const alphabet = 'ABCDQRSTabcz0189+/=-_ *\n';
      let seed = 7;
      const rnd = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      for (let k = 0; k < 20_000; k++) {
        let t = Buffer.from(Array.from({ length: rnd(12) }, () => rnd(256))).toString('base64');
        for (let m = rnd(3); m > 0 && t.length; m--) {
          const at = rnd(t.length);
          t = t.slice(0, at) + alphabet[rnd(alphabet.length)] + t.slice(at + 1);
        }
        const plain = decodeBase64Strict(t);
        assert.equal(typeof plain !== 'string', strictly(t), JSON.stringify(t));
        // A large file arrives as the bytes of its JSON string, "/" escaped as PHP does: same verdict,
        // same bytes, same message.
        const asJson = new JsonStringBytes(Buffer.from(JSON.stringify(t).slice(1, -1).replaceAll('/', '\\/')));
        assert.deepEqual(decodeBase64Strict(asJson), plain, JSON.stringify(t));
      }
    });
  });

  it('strict base64 from the bytes of a large JSON string: same verdict and bytes as from a string, across steps', () => {
    const base = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 7919) % 251)).toString('base64');
    const cases = [
      base,
      `${base.slice(0, -4)}QR==`,
      base.slice(0, -1),
      `${base.slice(0, 49_151)}*${base.slice(49_152)}`,
      `${base.slice(0, 49_150)}==${base.slice(49_152)}`,
      `${base.slice(0, 98_303)}-${base.slice(98_304)}`,
      `${base.slice(0, 100)}\n${base.slice(100)}`,
      ` ${base.slice(1)}`,
    ];
    for (const t of cases) {
      const escaped = JSON.stringify(t).slice(1, -1).replaceAll('/', '\\/');
      const viaBytes = decodeBase64Strict(new JsonStringBytes(Buffer.from(escaped)));
      assert.deepEqual(viaBytes, decodeBase64Strict(t.trim()), t.slice(0, 20));
    }
    assert.ok(Buffer.isBuffer(decodeBase64Strict(new JsonStringBytes(Buffer.from(base.replaceAll('/', '\\/'))))));
  });

  describe('large JSON string values lifted out as bytes', () => {
    it('parses like JSON.parse, with large values as views of their escaped bytes', () => {
      const big = 'QUJD\\/'.repeat(20);
      const body = Buffer.from(`{"data":{"a":"x\\"y","file":"${big}","n":[1,"${big}"],"q":"\\\\"},"meta":{"type":"t"}}`);
      const parsed = parseJsonLifting(body, 50) as {
        data: { a: string; file: unknown; n: unknown[]; q: string };
        meta: { type: string };
      };
      const expected = JSON.parse(body.toString()) as typeof parsed;
      assert.equal(parsed.data.a, expected.data.a);
      assert.equal(parsed.data.q, expected.data.q);
      assert.equal(parsed.meta.type, 't');
      assert.ok(parsed.data.file instanceof JsonStringBytes);
      assert.equal(parsed.data.file.bytes.toString(), big);
      assert.equal(parsed.data.file.toString(), expected.data.file);
      assert.ok(parsed.data.n[1] instanceof JsonStringBytes);
      assert.equal(parsed.data.n[0], 1);
    });

    it("a body that is not JSON fails with JSON.parse's own error", () => {
      const bad = Buffer.from(`{"file":"${'A'.repeat(100)}", oops}`);
      assert.throws(
        () => parseJsonLifting(bad, 50),
        (err: Error) => {
          assert.throws(() => JSON.parse(bad.toString()), { message: err.message });
          return true;
        },
      );
      assert.throws(() => parseJsonLifting(Buffer.from(`{"file":"${'A'.repeat(100)}`), 50), SyntaxError);
    });
  });
});
