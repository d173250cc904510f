// broker.authenticate / open / closed (Tixstock webhooks v1). Note that these replies carry
// success as the STRING "true"/"false", as Tixstock's docs require.
import { z } from 'zod';
import { FailedAuthThrottle } from '../../auth-throttle.js';
import type { Config } from '../../config.js';
import { log } from '../../log.js';
import { findBrokerByUsername, setBrokerClosed, setTixstockAccountOpen, verifyPassword } from '../../inventory/brokers.js';
import { applied, defineWebhook, entityKey, rejected } from '../registry.js';
import { looseBoolean, looseId } from '../../tixstock/resources.js';

// Failed logins per user name, one count per configuration (the process's; each test app's own).
const loginFailuresOf = new WeakMap<Config, FailedAuthThrottle>();
function loginFailures(config: Config): FailedAuthThrottle {
  let throttle = loginFailuresOf.get(config);
  if (!throttle) loginFailuresOf.set(config, (throttle = new FailedAuthThrottle(config.AUTH_FAILURE_LIMIT)));
  return throttle;
}

export const brokerAuthenticate = defineWebhook({
  schema: z.looseObject({
    username: z.string().trim().min(1, 'must not be empty').max(200),
    password: z.string().min(1, 'must not be empty').max(1000),
    tixstock_account_is_open: looseBoolean.optional(),
  }),
  retriesAreDuplicates: false,
  async handle(ctx, data) {
    // Every login comes from Tixstock's servers, so guesses are counted per user name.
    const failures = loginFailures(ctx.config);
    const wait = failures.retryAfter(data.username);
    if (wait > 0) {
      return rejected({ broker_id: null }, `too many failed logins for this user name; try again in ${wait} s`, {}, 'false');
    }
    const broker = await findBrokerByUsername(ctx.tx, data.username);
    const ok = await verifyPassword(data.password, broker?.password_hash ?? null);
    if (!broker || !ok) {
      log.warn('broker login failed', {
        delivery_id: ctx.deliveryId,
        failures: failures.failed(data.username),
        limit: failures.limit,
      });
      return rejected({ broker_id: null }, 'invalid username or password', {}, 'false');
    }
    if (data.tixstock_account_is_open !== undefined) {
      await setTixstockAccountOpen(ctx.tx, broker.id, data.tixstock_account_is_open);
    }
    return applied({ broker_id: broker.id, success: 'true', message: 'authenticated' }, { broker_id: broker.id });
  },
});

export const brokerOpen = defineWebhook({
  schema: z.looseObject({ broker_id: looseId }),
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('broker', data.broker_id),
  async handle(ctx, data) {
    await setBrokerClosed(ctx.tx, data.broker_id, false);
    return applied({ broker_id: data.broker_id, success: 'true' }, { broker_id: data.broker_id });
  },
});

export const brokerClosed = defineWebhook({
  schema: z.looseObject({ broker_id: looseId }),
  retriesAreDuplicates: true,
  entityOf: (data) => entityKey('broker', data.broker_id),
  async handle(ctx, data) {
    const { known } = await setBrokerClosed(ctx.tx, data.broker_id, true);
    return applied(
      {
        broker_id: data.broker_id,
        success: 'true',
        message: `broker ${data.broker_id} closed${known ? '' : ' (not seen before; recorded)'}`,
      },
      { broker_id: data.broker_id },
    );
  },
});
