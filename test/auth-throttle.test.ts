// Guessing costs time: after AUTH_FAILURE_LIMIT failed authentications in a minute a client is
// refused (429 + Retry-After for /api and /support, per address as Heroku's router forwards it;
// broker.authenticate per user name), and failures are logged without what was guessed.
import assert from 'node:assert/strict';
import request from 'supertest';
import { FailedAuthThrottle } from '../src/auth-throttle.js';
import { API_TOKEN, type App, resetDatabase, api, sendWebhook, testApp, webhook } from './helpers.js';

async function captureLog(fn: () => Promise<unknown>): Promise<string> {
  const saved = { out: process.stdout.write, err: process.stderr.write, level: process.env.LOG_LEVEL };
  let text = '';
  process.env.LOG_LEVEL = 'info';
  process.stdout.write = (() => true) as typeof process.stdout.write; // the webhook lines
  process.stderr.write = ((chunk: unknown) => ((text += String(chunk)), true)) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.env.LOG_LEVEL = saved.level;
  }
  return text;
}

describe('failed authentication is throttled per client', () => {
  let app: App;
  before(async () => {
    app = testApp({ AUTH_FAILURE_LIMIT: '5' }).app;
    await resetDatabase();
  });
  const basic = (password: string) => `Basic ${Buffer.from(`support:${password}`).toString('base64')}`;

  it('wrong API tokens: 401 up to the limit, then 429 with Retry-After, even for the right token', async () => {
    const from = (ip: string) => ({ 'X-Forwarded-For': `6.6.6.6, ${ip}` }); // the router appends the real address
    const output = await captureLog(async () => {
      for (let i = 0; i < 5; i++)
        await request(app).get('/api/listings').set(from('10.0.0.1')).set('Authorization', `Bearer guess-${i}`).expect(401);
    });
    const refused = await request(app)
      .get('/api/listings')
      .set(from('10.0.0.1'))
      .set('Authorization', `Bearer ${API_TOKEN}`)
      .expect(429);
    assert.match(refused.body.message, /too many failed authentication attempts/);
    assert.ok(Number(refused.headers['retry-after']) >= 1 && Number(refused.headers['retry-after']) <= 60);
    // Another client (the address the router saw differs; the client-written part is the same) is not affected.
    await request(app).get('/api/listings').set(from('10.0.0.2')).set('Authorization', `Bearer ${API_TOKEN}`).expect(200);
    // A request without any token guesses nothing: 401, not counted.
    for (let i = 0; i < 8; i++) await request(app).get('/api/listings').set(from('10.0.0.3')).expect(401);
    const lines = output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 5);
    assert.deepEqual(
      [lines[4].msg, lines[4].what, lines[4].client, lines[4].failures],
      ['authentication failed', 'api token', '10.0.0.1', 5],
    );
    assert.doesNotMatch(output, /guess-/);
  });

  it('wrong support passwords: the same', async () => {
    const output = await captureLog(async () => {
      for (let i = 0; i < 5; i++)
        await request(app)
          .get('/support')
          .set('X-Forwarded-For', '10.0.1.1')
          .set('Authorization', basic(`guess-${i}`))
          .expect(401);
    });
    await request(app)
      .get('/support')
      .set('X-Forwarded-For', '10.0.1.1')
      .set('Authorization', basic('test-support-password'))
      .expect(429);
    await request(app)
      .get('/support')
      .set('X-Forwarded-For', '10.0.1.2')
      .set('Authorization', basic('test-support-password'))
      .expect(200);
    assert.match(output, /"what":"support password"/);
    assert.doesNotMatch(output, /guess-/);
  });

  it('broker.authenticate: refused per user name after the limit, without checking the password', async () => {
    await api(app).post('/api/brokers').send({ username: 'guessed@example.org', password: 'the real password' }).expect(201);
    const login = (password: string) =>
      sendWebhook(app, webhook('broker.authenticate', { username: 'guessed@example.org', password })).expect(200);
    const output = await captureLog(async () => {
      for (let i = 0; i < 5; i++) assert.equal((await login(`guess-${i}`)).body.message, 'invalid username or password');
    });
    const refused = await login('the real password');
    assert.equal(refused.body.success, 'false');
    assert.match(refused.body.message, /too many failed logins for this user name; try again in \d+ s/);
    assert.equal(refused.body.broker_id, null);
    assert.match(output, /broker login failed/);
    assert.doesNotMatch(output, /guess-|guessed@example/);
  });

  it('a client may try again once its window has passed', () => {
    let now = 0;
    const throttle = new FailedAuthThrottle(2, 60_000, () => now);
    throttle.failed('a');
    assert.equal(throttle.retryAfter('a'), 0);
    throttle.failed('a');
    assert.equal(throttle.retryAfter('a'), 60);
    now = 59_500;
    assert.equal(throttle.retryAfter('a'), 1);
    now = 60_000;
    assert.equal(throttle.retryAfter('a'), 0);
  });
});
