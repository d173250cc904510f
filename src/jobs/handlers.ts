// Job kind -> the code that does it. A kind is never renamed: rows already queued carry it.
import { FULFILMENT_NOTICE, fulfilmentNoticeJob, ORDER_TICKETS, orderTicketsJob } from '../support/notices.js';
import type { JobHandler } from './worker.js';

export const jobHandlers: Record<string, JobHandler> = {
  [FULFILMENT_NOTICE]: fulfilmentNoticeJob,
  [ORDER_TICKETS]: orderTicketsJob,
};
