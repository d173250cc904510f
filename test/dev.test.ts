// Development mode: `npm start` with nothing set works end to end (secrets generated once and
// kept, a printed command that sends a signed webhook, GET / linking the pages); production
// mode refuses without secrets and says which. Real processes of the service.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { databaseUrl, freePort } from './helpers.js';
import { startServer } from './server-process.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const NO_SECRETS = { TIXSTOCK_BEARER_TOKEN: '', API_TOKEN: '', SUPPORT_PASSWORD: '' };

describe('development mode', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(tmpdir(), 'tixstock-dev-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('generates missing secrets once, prints a webhook command that works, and links the pages at /', async () => {
    const file = path.join(dir, 'dev-secrets.json');
    const server = await startServer({ ...NO_SECRETS, NODE_ENV: 'development', DEV_SECRETS_FILE: file });
    try {
      while (!server.output().includes('X-Tixstock-Signature')) await new Promise((r) => setTimeout(r, 50));
      const secrets = JSON.parse(await readFile(file, 'utf8'));
      assert.deepEqual(Object.keys(secrets).sort(), ['API_TOKEN', 'SUPPORT_PASSWORD', 'TIXSTOCK_BEARER_TOKEN']);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const out = server.output();
      const banner = out.slice(out.indexOf('Send a signed example webhook'));
      const command = banner
        .split('\n\n')[0]!
        .split('\n')
        .slice(1)
        .filter((l) => l.startsWith('  '))
        .join('\n')
        .replaceAll('http://localhost:', 'http://127.0.0.1:');
      const port = new URL(server.url).port;
      assert.match(command, new RegExp(`127\\.0\\.0\\.1:${port}/webhooks/tixstock`));
      const { stdout } = await exec('bash', ['-c', command], { cwd: root });
      assert.equal(JSON.parse(stdout).success, true, stdout);

      const home = await fetch(`${server.url}/`);
      assert.equal(home.status, 200);
      const page = await home.text();
      for (const href of ['/support', '/api/openapi.json', '/healthz', '/readyz'])
        assert.ok(page.includes(`href="${href}"`), href);
      const listings = await fetch(`${server.url}/api/listings`, { headers: { Authorization: `Bearer ${secrets.API_TOKEN}` } });
      assert.equal(listings.status, 200);
      const support = await fetch(`${server.url}/support`, {
        headers: { Authorization: `Basic ${Buffer.from(`support:${secrets.SUPPORT_PASSWORD}`).toString('base64')}` },
      });
      assert.equal(support.status, 200);

      // TIXSTOCK_API_URL unset: our own sales go to the simulator in the service's process.
      const origin = /simulator in this process, (http:\/\/127\.0\.0\.1:\d+)\/_sim\/state/.exec(out)?.[1];
      assert.ok(origin, out);
      const played = await fetch(`${origin}/_sim/play/listing`, { method: 'POST', body: JSON.stringify({ quantity: 4 }) });
      const listing = (await played.json()) as { id: string };
      assert.equal(played.status, 200, JSON.stringify(listing));
      const hold = await fetch(`${server.url}/api/holds`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${secrets.API_TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ listing_id: listing.id, quantity: 3 }),
      });
      assert.equal(hold.status, 201, await hold.text());
    } finally {
      await server.stop();
    }
    const first = await readFile(file, 'utf8');
    const again = await startServer({
      ...NO_SECRETS,
      NODE_ENV: 'development',
      DEV_SECRETS_FILE: file,
      API_TOKEN: 'set-by-the-developer',
    });
    try {
      assert.equal(await readFile(file, 'utf8'), first, 'the kept secrets are used, not new ones');
      const kept = JSON.parse(first);
      while (!again.output().includes('X-Tixstock-Signature')) await new Promise((r) => setTimeout(r, 50));
      assert.ok(again.output().includes(kept.TIXSTOCK_BEARER_TOKEN), 'the same token, not a new one');
      assert.ok(again.output().includes('Bearer $API_TOKEN'), 'a secret set in the environment is not printed');
      assert.equal(
        (await fetch(`${again.url}/api/listings`, { headers: { Authorization: 'Bearer set-by-the-developer' } })).status,
        200,
      );
    } finally {
      await again.stop();
    }
  });

  it('npm run demo plays a day: the service and the simulator agree at every step', async () => {
    const port = await freePort();
    const r = await exec(process.execPath, ['--import', 'tsx', 'src/demo.ts'], {
      cwd: root,
      timeout: 90_000,
      env: {
        ...process.env,
        ...NO_SECRETS,
        NODE_ENV: 'development',
        DATABASE_URL: databaseUrl(),
        PORT: String(port),
        LOG_LEVEL: 'warn',
        DEV_SECRETS_FILE: path.join(dir, 'demo-secrets.json'),
        DEMO_ROUNDS: '2',
        DEMO_PAUSE_SECONDS: '0',
        DEMO_EXIT: 'true',
      },
    });
    assert.match(r.stdout, /demo: the day went as expected: 2 orders/, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /FAIL/);
    const steps = r.stdout.split('\n').filter((l) => l.startsWith('demo: ok'));
    for (const step of ['POST /api/holds', 'ticket.sold', 'order.update', 'order.eticket_fulfilment', 'reaches Tixstock']) {
      assert.equal(steps.filter((l) => l.includes(step)).length >= 2, true, step);
    }
  });

  it('in production, missing secrets stay refusals, the log names them, and nothing is generated', async () => {
    const file = path.join(dir, 'never.json');
    const server = await startServer({ ...NO_SECRETS, NODE_ENV: 'production', DEV_SECRETS_FILE: file });
    try {
      assert.equal((await fetch(`${server.url}/`)).status, 404);
      assert.equal((await fetch(`${server.url}/api/listings`, { headers: { Authorization: 'Bearer x' } })).status, 503);
      assert.equal((await fetch(`${server.url}/webhooks/tixstock`, { method: 'POST', body: '{}' })).status, 503);
      const warnings = server
        .output()
        .split('\n')
        .filter((l) => l.includes('is unset'))
        .map((l) => JSON.parse(l).variable);
      assert.deepEqual(warnings, ['TIXSTOCK_BEARER_TOKEN', 'API_TOKEN', 'SUPPORT_PASSWORD']);
      assert.doesNotMatch(server.output(), /Development mode|X-Tixstock-Signature/);
    } finally {
      await server.stop();
    }
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });
});
