// What the support page's front shows besides search: fulfilment webhooks that were refused
// (bad file, empty e-ticket, invalid body). Read-only over the delivery log.
import type { Sql } from '../db/connect.js';

export interface RefusedFulfilment {
  id: string;
  received_at: Date;
  type: string;
  outcome: string;
  order_id: string | null;
  message: string | null;
}

export async function refusedFulfilments(sql: Sql, limit = 20): Promise<RefusedFulfilment[]> {
  return sql<RefusedFulfilment[]>`
    select id, received_at, type, outcome, order_id, coalesce(reply->>'message', error) as message
      from deliveries
     where type in ('order.eticket_fulfilment', 'order.mobile_ticket_fulfilment')
       and outcome in ('rejected', 'invalid', 'failed')
     order by id desc
     limit ${limit}`;
}
