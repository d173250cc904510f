// Job kind -> the code that does it. A kind is never renamed: rows already queued carry it.
import { FULFILMENT_NOTICE, fulfilmentNoticeJob, ORDER_TICKETS, orderTicketsJob } from '../support/notices.js';
import { runRetention } from '../webhooks/retention.js';
import type { JobHandler, PeriodicTask } from './worker.js';

export const jobHandlers: Record<string, JobHandler> = {
  [FULFILMENT_NOTICE]: fulfilmentNoticeJob,
  [ORDER_TICKETS]: orderTicketsJob,
};

const HOUR = 60 * 60_000;

export const periodicTasks: PeriodicTask[] = [
  // Drops delivery bodies older than DELIVERY_BODY_RETENTION and checks DATABASE_SIZE_LIMIT; once
  // an hour across all dynos (a dyno whose turn another took skips).
  { name: 'delivery-retention', everyMs: HOUR, firstAfterMs: 60_000, run: async ({ sql, config, stopping }) => {
    await runRetention(sql, config, { minGapMs: HOUR - 5 * 60_000, stopping });
  } },
];
