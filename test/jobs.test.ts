// The job worker: mail queued in the webhook's transaction survives a crash between the commit
// and the send, a dead worker's lease runs out and another takes the job, two workers never
// take the same job, and stopping lets running jobs finish or returns them to the queue.
import assert from 'node:assert/strict';
import { fixture, resetDatabase, sendWebhook, testApp } from './helpers.js';
import { claimJobs, enqueueJob } from '../src/jobs/queue.js';
import { retryDelay, startJobWorker, type JobHandler, type JobWorker } from '../src/jobs/worker.js';
import { queueOrderTickets } from '../src/jobs/mails.js';
import { mailJobHandlers } from '../src/support/mail-jobs.js';
import { fulfilment, makePdf, sleep, startSmtp, waitUntil, type TestApp, type TestSmtp } from './tickets-helpers.js';

describe('job worker', () => {
  let smtp: TestSmtp;
  let t: TestApp;
  const workers: JobWorker[] = [];
  before(async () => {
    smtp = await startSmtp();
    t = testApp({ SMTP_URL: smtp.url, SUPPORT_EMAIL: 'support@reseller.example' });
  });
  after(() => smtp.close());
  beforeEach(async () => {
    await resetDatabase();
    smtp.mails.length = 0;
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop(2000)));
  });

  const start = (opts: Partial<Parameters<typeof startJobWorker>[0]> = {}) => {
    const w = startJobWorker({ sql: t.sql, config: t.config, handlers: mailJobHandlers, pollMs: 20, retryBaseMs: 20, ...opts });
    workers.push(w);
    return w;
  };
  const job = async (id: string) => (await t.sql`select status, attempts, locked_by, last_error from jobs where id = ${id}`)[0]!;

  it('a crash between the commit and the send loses no mail: the restarted worker sends it exactly once', async () => {
    // "Crashed" process: the webhook committed, no worker ever ran.
    const res = await sendWebhook(t.app, fixture('order.eticket_fulfilment.json')).expect(200);
    assert.equal(res.body.success, true);
    await sleep(100);
    assert.equal(smtp.mails.length, 0);
    const [queued] = await t.sql`select id, status from jobs`;
    assert.equal(queued!.status, 'pending');

    start(); // the restart
    await waitUntil('the notice', () => smtp.mails.length >= 1);
    await waitUntil('the job to be done', async () => (await job(queued!.id)).status === 'done');
    await sleep(200); // many more polls
    start(); // and a second process
    await sleep(200);
    assert.equal(smtp.mails.length, 1);
    assert.equal((await t.sql`select count(*)::int as n from mails`)[0]!.n, 1);
  });

  it('a worker that died holding a job: the lease runs out and another worker sends it once', async () => {
    await sendWebhook(t.app, fixture('order.eticket_fulfilment.json')).expect(200);
    const [claimed] = await claimJobs(t.sql, 'dead-worker', 10, 300);
    assert.ok(claimed, 'the dead worker took the job');
    start();
    await sleep(100);
    assert.equal(smtp.mails.length, 0, 'not taken while the lease holds');
    await waitUntil('the notice', () => smtp.mails.length >= 1);
    await waitUntil('the job to be done', async () => (await job(claimed.id)).status === 'done');
    assert.equal((await job(claimed.id)).attempts, 2);
    await sleep(200);
    assert.equal(smtp.mails.length, 1);
  });

  it('two workers take different jobs (SKIP LOCKED): twelve mails, each sent once', async () => {
    for (let i = 1; i <= 12; i++) {
      await sendWebhook(t.app, fulfilment('eticket', { order_id: `R-W${i}` }, await makePdf(`R-W${i}`))).expect(200);
    }
    start({ workerId: 'a', concurrency: 3 });
    start({ workerId: 'b', concurrency: 3 });
    await waitUntil('twelve mails', () => smtp.mails.length >= 12);
    await waitUntil(
      'all jobs done',
      async () => (await t.sql`select count(*)::int as n from jobs where status = 'done'`)[0]!.n === 12,
    );
    await sleep(200);
    assert.equal(smtp.mails.length, 12);
    const ids = new Set(smtp.mails.map((m) => m.headers['message-id']));
    assert.equal(ids.size, 12);
    const subjects = smtp.mails.map((m) => /order (R-W\d+)/.exec(m.headers.subject!)![1]).sort();
    assert.deepEqual(subjects, Array.from({ length: 12 }, (_, i) => `R-W${i + 1}`).sort());
  });

  it('stop() lets a running job finish', async () => {
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      const handler: JobHandler = async () => {
        resolve();
        await new Promise<void>((r) => {
          release = r;
        });
      };
      start({ handlers: { slow: handler } });
    });
    const id = await enqueueJob(t.sql, { kind: 'slow', payload: {} });
    await started;
    const w = workers[0]!;
    const stopping = w.stop(10_000);
    await sleep(50);
    assert.equal((await job(id)).status, 'running');
    release();
    await stopping;
    assert.equal((await job(id)).status, 'done');
  });

  it('stop() returns a job still running after the grace period to the queue', async () => {
    const started = new Promise<void>((resolve) => {
      start({
        workerId: 'stopping',
        handlers: {
          stuck: async () => {
            resolve();
            await new Promise(() => {});
          },
        },
      });
    });
    const id = await enqueueJob(t.sql, { kind: 'stuck', payload: {} });
    await started;
    await workers[0]!.stop(50);
    const j = await job(id);
    assert.deepEqual(
      { status: j.status, attempts: j.attempts, locked_by: j.locked_by },
      { status: 'pending', attempts: 0, locked_by: null },
    );
  });

  it('a job of an unknown kind is retried, then failed with a message', async () => {
    const id = await enqueueJob(t.sql, { kind: 'no.such.kind', payload: {}, maxAttempts: 2 });
    start({ retryBaseMs: 1 });
    await waitUntil('the job to fail', async () => (await job(id)).status === 'failed');
    assert.match((await job(id)).last_error, /no handler for job kind "no\.such\.kind"/);
  });

  it('an order-tickets mail for an order without PDFs fails with a clear error', async () => {
    const id = await queueOrderTickets(t.sql, { orderId: 'R-NONE', to: 'x@example.org', requestedBy: 'test' });
    await t.sql`update jobs set max_attempts = 1 where id = ${id}`;
    start();
    await waitUntil('the job to fail', async () => (await job(id)).status === 'failed');
    assert.match((await job(id)).last_error, /order R-NONE has no ticket PDFs/);
  });

  it('back-off doubles per attempt up to the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 10].map((n) => retryDelay(n, 1000, 5000)),
      [1000, 2000, 4000, 5000, 5000],
    );
  });
});
