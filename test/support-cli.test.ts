// `npm run support -- ...` as a support person runs it: a real child process against the test
// database (DATABASE_URL), and once against a fresh embedded database (DATABASE_URL unset).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { databaseUrl, fixture, freePort, resetDatabase, sendWebhook, testApp } from './helpers.js';
import { fulfilment, makePdf, pageSizes, startSmtp, type TestApp, type TestSmtp } from './tickets-helpers.js';

const exec = promisify(execFile);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl(),
    LOG_LEVEL: undefined,
    SMTP_URL: undefined,
    ...env,
  };
  for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
  try {
    const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', 'src/support/cli.ts', ...args], {
      cwd: ROOT,
      env: childEnv,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('support CLI', function () {
  this.timeout(60_000);
  let t: TestApp;
  let smtp: TestSmtp;
  let dir: string;
  before(async () => {
    t = testApp();
    smtp = await startSmtp();
    dir = await mkdtemp(path.join(tmpdir(), 'support-cli-'));
    await resetDatabase();
    await sendWebhook(t.app, fixture('order.update.json')).expect(200);
    for (const seat of ['22', '21']) {
      await sendWebhook(
        t.app,
        fulfilment('eticket', { order_id: 'R-20027', seat }, await makePdf(`F${seat}`, { width: 200 + Number(seat) })),
      ).expect(200);
    }
    await t.sql`update jobs set status = 'done'`; // the notices are not what this file tests
  });
  after(async () => {
    await smtp.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('order: shows the order and its tickets (npm run support), or JSON', async () => {
    const { stdout } = await exec('npm', ['run', '-s', 'support', '--', 'order', 'R-20027'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl() },
    });
    assert.match(stdout, /^order R-20027: Approved/);
    assert.match(stdout, /Ana Sørensen <ana@example\.org>/);
    assert.match(stdout, /tickets \(2\):\n.*row F seat 21.*\n.*row F seat 22/);
    const json = await cli(['order', 'R-20027', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const order = JSON.parse(json.stdout);
    assert.deepEqual(
      order.tickets.map((x: { seat: string }) => x.seat),
      ['21', '22'],
    );
  });

  it('pdf: writes all tickets merged in seat order', async () => {
    const file = path.join(dir, 'out.pdf');
    const r = await cli(['pdf', 'R-20027', '--out', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*out\.pdf: 2 ticket\(s\)/);
    assert.deepEqual(
      (await pageSizes(await readFile(file))).map(([w]) => w),
      [221, 222],
    );
  });

  it('email: sends the PDFs through SMTP and says so', async () => {
    const r = await cli(['email', 'R-20027', 'buyer@example.org'], { SMTP_URL: smtp.url });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sent 2 PDF\(s\) to buyer@example\.org/);
    assert.equal(smtp.mails.length, 1);
    assert.deepEqual(smtp.mails[0]!.to, ['buyer@example.org']);
    assert.equal(smtp.mails[0]!.attachments.length, 2);
  });

  it("email leaves the service's own jobs (Tixstock sync, reconciliation) to the service", async () => {
    const [sync] =
      await t.sql`insert into jobs (kind, payload, order_id) values ('tixstock.order_update', '{"order_id":"R-20027"}', 'R-20027') returning id`;
    const [rec] = await t.sql`insert into jobs (kind, payload) values ('reconcile.periodic', '{}') returning id`;
    const r = await cli(['email', 'R-20027', 'buyer@example.org']);
    assert.equal(r.code, 0, r.stderr);
    const rows = await t.sql`select kind, attempts, status, last_error from jobs where id in (${sync!.id}, ${rec!.id})`;
    for (const row of rows) assert.equal(row.attempts, 0, `${row.kind} was claimed by the CLI: ${row.last_error}`);
    await t.sql`delete from jobs where id in (${sync!.id}, ${rec!.id})`;
  });

  it('email without SMTP_URL records the mail to the log', async () => {
    const r = await cli(['email', 'R-20027', 'buyer@example.org']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /recorded to the log, not sent \(SMTP_URL is unset\)/);
  });

  it('bad input: unknown order, bad address, unknown command', async () => {
    const unknown = await cli(['order', 'R-404']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /order R-404 not found/);
    const bad = await cli(['email', 'R-20027', 'nobody']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /must be an e-mail address/);
    const cmd = await cli(['delete', 'R-20027']);
    assert.equal(cmd.code, 2);
    assert.match(cmd.stderr, /unknown command "delete"/);
  });

  it('works against the embedded database when DATABASE_URL is unset', async () => {
    // Under the project, like test/setup.ts's: initdb runs as a "postgres" user when we are root,
    // and it cannot enter root's private temp directories.
    const embedded = path.join(tmpdir(), `tixstock-cli-test-${process.pid}`);
    const r = await cli(['order', 'R-1'], {
      DATABASE_URL: undefined,
      EMBEDDED_POSTGRES_DIR: embedded,
      EMBEDDED_POSTGRES_PORT: String(await freePort()),
    }).finally(() => rm(embedded, { recursive: true, force: true }));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /order R-1 not found/, 'it started, migrated and searched an empty database');
  });
});
