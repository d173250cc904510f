// The periodic work of the sales side, run by every process's job worker: holds whose time is
// up are expired (their tickets come back), old Idempotency-Key rows are deleted. Both are safe
// on any number of processes at once and after any crash.
import type { Config } from '../config.js';
import type { Sql } from '../db/connect.js';
import { expireDueHolds } from '../inventory/holds.js';
import type { PeriodicTask } from '../jobs/worker.js';
import { log } from '../log.js';
import { deleteOldKeys } from './idempotency.js';

export function salesSweep(sql: Sql, config: Config): PeriodicTask {
  // Often enough that a hold's tickets come back soon after it expires, even with short holds.
  const everyMs = Math.max(200, Math.min(5_000, (config.TIXSTOCK_HOLD_MINUTES * 60_000) / 4));
  let lastKeyCleanup = 0;
  return {
    name: 'sales sweep',
    everyMs,
    async run() {
      const expired = await expireDueHolds(sql);
      if (expired) log.info('holds expired', { count: expired });
      if (Date.now() - lastKeyCleanup > 60 * 60_000) {
        lastKeyCleanup = Date.now();
        await deleteOldKeys(sql);
      }
    },
  };
}
