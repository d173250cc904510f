// Support from a terminal, against DATABASE_URL or (unset) the embedded database:
//   npm run support -- order <order id> [--json]
//   npm run support -- pdf <order id> [--out file.pdf]
//   npm run support -- email <order id> <address> [--queue-only]
//   npm run support -- reconcile [--repair|--report]
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { migrate } from '../db/migrate.js';
import { openDatabase } from '../db/open.js';
import { getJob } from '../jobs/queue.js';
import { startJobWorker } from '../jobs/worker.js';
import { abortRuns, runOptionsFrom, startRun, type StartedRun } from '../reconcile/run.js';
import { getRun, RunInProgress } from '../reconcile/runs.js';
import { pdfFileName } from '../tickets/pdf-name.js';
import { createTixstockClient } from '../tixstock/client.js';
import { emailAddress } from './mail.js';
import { queueOrderTickets } from '../jobs/mails.js';
import { mailJobHandlers } from './mail-jobs.js';
import { mergedTickets, orderView, type OrderView } from './order-view.js';

const USAGE = `usage:
  npm run support -- order <order id> [--json]          show an order and its tickets
  npm run support -- pdf <order id> [--out file.pdf]     write all its tickets as one PDF
  npm run support -- email <order id> <address> [--queue-only]
                                                         e-mail its ticket PDFs (waits until sent)
  npm run support -- reconcile [--repair|--report]      compare the inventory with Tixstock's tickets/get
                                                         (--repair: correct it and import what is missing;
                                                         default RECONCILE_REPAIR). Exit 0: nothing differed,
                                                         1: differences, 3: the run failed or another runs`;

class Failure extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

const out = (line = '') => {
  process.stdout.write(`${line}\n`);
};

function printOrder(o: OrderView): void {
  out(
    `order ${o.id}: ${o.order_status ?? 'no status yet'}${o.reseller_status ? ` (ours; Tixstock says ${o.status ?? 'nothing'})` : ''}`,
  );
  out(`  customer  ${o.customer_name ?? '-'} <${o.customer_email ?? '-'}>`);
  out(`  total     ${o.grand_total ?? '-'} ${o.currency ?? ''}   quantity ${o.quantity ?? '-'}   date ${o.date ?? '-'}`);
  out(`  tracking  ${o.shipping_tracking_id ?? '-'}`);
  out(`tickets (${o.tickets.length}):`);
  for (const t of o.tickets) {
    out(
      `  ${t.id}  ${t.kind}  listing ${t.listing_id ?? '-'}  row ${t.row ?? '-'} seat ${t.seat ?? '-'}  ${t.pages} page(s)  ${t.bytes} bytes  sha256 ${t.sha256}  ${t.received_at.toISOString()}`,
    );
  }
  if (o.proof_file_urls.length) out(`proof files:\n${o.proof_file_urls.map((u) => `  ${u}`).join('\n')}`);
}

async function waitForJob(sql: Sql, config: Config, jobId: string): Promise<void> {
  const worker = startJobWorker({
    sql,
    config,
    handlers: mailJobHandlers,
    pollMs: 200,
    retryBaseMs: 2000,
    maxRetryMs: 10_000,
    periodic: [],
    onlyOwnKinds: true,
  });
  try {
    const until = Date.now() + 60_000;
    for (;;) {
      const job = await getJob(sql, jobId);
      if (job?.status === 'done') return;
      if (job?.status === 'failed') throw new Failure(`job ${jobId} failed after ${job.attempts} attempt(s): ${job.last_error}`);
      if (Date.now() > until) {
        throw new Failure(
          `job ${jobId} is not done after 60 s (${job?.last_error ?? 'no error yet'}); the service's worker keeps retrying it`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await worker.stop(5000);
  }
}

async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      out: { type: 'string' },
      'queue-only': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      repair: { type: 'boolean' },
      report: { type: 'boolean' },
    },
  });
  const [command, orderId, address] = positionals;
  if (values.help || !command) throw new Failure(USAGE, values.help ? 0 : 2);
  if (!['order', 'pdf', 'email', 'reconcile'].includes(command))
    throw new Failure(`unknown command ${JSON.stringify(command)}\n${USAGE}`, 2);
  if (command === 'reconcile') {
    if (values.repair && values.report) throw new Failure(`reconcile: --repair or --report, not both\n${USAGE}`, 2);
    return reconcile(values.repair ? true : values.report ? false : undefined);
  }
  if (!orderId) throw new Failure(`${command}: an order id is required\n${USAGE}`, 2);
  const to = command === 'email' ? emailAddress.safeParse(address ?? '') : undefined;
  if (to && !to.success) throw new Failure(`email: the address ${to.error.issues[0]?.message ?? 'is not valid'}\n${USAGE}`, 2);

  const config = loadConfig();
  const db = await openDatabase(config, 'tixstock-support-cli');
  try {
    await migrate(db.sql);
    const order = await orderView(db.sql, orderId);
    if (!order) throw new Failure(`order ${orderId} not found`);
    if (command === 'order') {
      if (values.json) out(JSON.stringify(order, null, 2));
      else printOrder(order);
    } else if (command === 'pdf') {
      const merged = await mergedTickets(db.sql, config, orderId);
      if (merged.found && merged.error) throw new Failure(merged.error);
      if (!merged.found || !merged.pdf) throw new Failure(`order ${orderId} has no ticket PDFs yet`);
      const file = values.out ?? pdfFileName(orderId, 'tickets');
      await writeFile(file, merged.pdf);
      out(`wrote ${file}: ${merged.tickets} ticket(s), ${merged.pdf.length} bytes`);
    } else {
      if (order.tickets.length === 0) throw new Failure(`order ${orderId} has no ticket PDFs to send`);
      const jobId = await queueOrderTickets(db.sql, { orderId, to: to!.data!, requestedBy: 'cli' });
      if (values['queue-only']) return out(`queued mail job ${jobId}; the service's worker sends it`);
      await waitForJob(db.sql, config, jobId);
      const [mail] = await db.sql<{ transport: string; message_id: string | null }[]>`
        select transport, message_id from mails where job_id = ${jobId}`;
      out(
        mail?.transport === 'log'
          ? `job ${jobId}: recorded to the log, not sent (SMTP_URL is unset)`
          : `job ${jobId}: sent ${order.tickets.length} PDF(s) to ${to!.data} (message id ${mail?.message_id ?? '-'})`,
      );
    }
  } finally {
    await db.close();
  }
}

/** One reconciliation run, with a line of progress per page and the differences at the end. */
async function reconcile(repairFlag: boolean | undefined): Promise<void> {
  const config = loadConfig();
  const repair = repairFlag ?? config.RECONCILE_REPAIR;
  const db = await openDatabase(config, 'tixstock-support-cli');
  try {
    await migrate(db.sql);
    let started: StartedRun;
    try {
      started = await startRun(db.sql, createTixstockClient(config), {
        ...runOptionsFrom(config),
        repair,
        requestedBy: 'cli',
        onProgress: (p) =>
          out(
            `${p.phase === 'pages' ? `${p.pages} page(s) read` : 'asked by id'}: ${p.listings} listing(s) checked, ${p.withoutId} without id, ${p.differences} difference(s), ${p.imported} imported`,
          ),
      });
    } catch (err) {
      if (err instanceof RunInProgress) throw new Failure(`${err.message}: see GET /api/reconciliations/${err.runningId}`, 3);
      throw err;
    }
    out(`reconciliation ${started.id} (${repair ? 'repair' : 'report only'}) against ${config.TIXSTOCK_API_URL}`);
    process.once('SIGINT', () => void abortRuns('interrupted (SIGINT) at the command line'));
    const outcome = await started.finished;
    const run = (await getRun(db.sql, started.id))!;
    for (const d of run.differences) {
      out(
        `  ${d.listing_id}  ${d.field}  ours ${JSON.stringify(d.ours)}  tixstock ${JSON.stringify(d.tixstock)}  ${d.action}${d.note ? `  (${d.note})` : ''}`,
      );
    }
    if (run.difference_count > run.differences.length)
      out(`  ... and ${run.difference_count - run.differences.length} more (GET /api/reconciliations/${run.id})`);
    const summary = `${run.pages} page(s), ${run.listings_checked} listing(s) checked, ${run.without_id} without id, ${run.difference_count} difference(s), ${run.imported} imported`;
    if (outcome.status === 'failed')
      throw new Failure(`reconciliation ${run.id} failed: ${outcome.error}\n  before that: ${summary}`, 3);
    out(`reconciliation ${run.id} done: ${summary}`);
    process.exitCode = run.difference_count > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

process.env.LOG_LEVEL ??= 'silent'; // stdout carries the answer (and JSON with --json)
run(process.argv.slice(2)).then(
  () => exit(),
  (err) => {
    if (err instanceof Failure) {
      (err.code === 0 ? process.stdout : process.stderr).write(`${err.message}\n`);
      process.exitCode = err.code;
    } else if (err instanceof ConfigError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`support: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = 1;
    }
    exit();
  },
);

/** Exits explicitly: the embedded database's exit hook would otherwise end us with status 0. */
function exit(): void {
  process.exit(process.exitCode ?? 0);
}
