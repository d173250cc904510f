// The load generator, run as its own process so its CPU is not the server's: receives jobs from
// bench/run.ts over IPC, drives autocannon with signed bodies from bench/workloads.ts, and
// answers with the numbers. Several targets in one job (the 1 vs 2 process run) are driven at
// once, connections split evenly, and their counts summed.
import autocannon from 'autocannon';
import { makeTicketPdf } from './pdf.js';
import { workload, type WorkloadName } from './workloads.js';

export interface LoadJob {
  urls: string[];
  workload: WorkloadName;
  token: string;
  listingIds: string[];
  connections: number;
  /** Seconds to run, or... */
  duration?: number;
  /** ...a number of requests to send. */
  amount?: number;
  timeoutSeconds: number;
  pdfBytes?: number;
  runTag: string;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  status: Record<string, number>;
  /** Socket errors and timeouts: requests that got no HTTP answer. */
  noAnswer: number;
}

const pdfs = new Map<number, Buffer>();
let runs = 0;

async function run(job: LoadJob): Promise<LoadResult> {
  let pdf: Buffer | undefined;
  if (job.pdfBytes) {
    if (!pdfs.has(job.pdfBytes)) pdfs.set(job.pdfBytes, await makeTicketPdf(job.pdfBytes, `bench ${job.pdfBytes}`));
    pdf = pdfs.get(job.pdfBytes);
  }
  // One body sequence shared by all connections and targets, so no two requests repeat a body.
  // Each run its own tag: the ceiling's and the service's rounds of one case must not repeat
  // each other's bodies (a repeated absolute-state body is rightly answered as a duplicate).
  const next = workload({
    name: job.workload,
    token: job.token,
    listingIds: job.listingIds,
    pdf,
    runTag: `${job.runTag}-${runs++}`,
  });
  const per = Math.max(1, Math.floor(job.connections / job.urls.length));
  const results = await Promise.all(
    job.urls.map((url) =>
      autocannon({
        url: `${url}/webhooks/tixstock`,
        connections: per,
        // autocannon refuses a duration key that is present but undefined.
        ...(job.amount === undefined ? { duration: job.duration } : { amount: Math.ceil(job.amount / job.urls.length) }),
        timeout: job.timeoutSeconds,
        method: 'POST',
        requests: [
          {
            setupRequest: (req) => {
              const { body, signature } = next();
              return {
                ...req,
                body,
                headers: {
                  'content-type': 'application/json',
                  'tixstock-version': 'v1',
                  'user-agent': 'Tixstock API',
                  'x-tixstock-signature': signature,
                },
              };
            },
          },
        ],
      }),
    ),
  );
  const status: Record<string, number> = {};
  let requests = 0,
    noAnswer = 0,
    seconds = 0,
    p50 = 0,
    p99 = 0,
    max = 0;
  for (const r of results) {
    for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) status[code] = (status[code] ?? 0) + (s.count ?? 0);
    requests += r.requests.total;
    noAnswer += r.errors + r.timeouts;
    seconds = Math.max(seconds, r.duration);
    // Several targets: the worst of each percentile (they run side by side on one machine).
    p50 = Math.max(p50, r.latency.p50);
    p99 = Math.max(p99, r.latency.p99);
    max = Math.max(max, r.latency.max);
  }
  return { requests, seconds, rps: requests / seconds, p50, p99, max, status, noAnswer };
}

process.on('message', (msg: { id: number; job: LoadJob }) => {
  run(msg.job).then(
    (result) => process.send!({ id: msg.id, result }),
    (err: Error) => process.send!({ id: msg.id, error: err.stack ?? err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
