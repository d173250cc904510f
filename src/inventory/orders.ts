// Orders: written by order.update, ticket.sold (with order_details), the fulfilment webhooks
// (an order they name is created if unknown) and PUT /api/orders/:id/status. The status we
// reply to Tixstock is the reseller's own when one was set, otherwise Tixstock's.
import { jsonOrNull as json, type Sql, type Tx } from '../db/connect.js';

/** An order as Tixstock sends it (order.update, ticket.sold, the fulfilment webhooks): only `id`
 * is sure to be there; these fields get columns, all of it is kept in `data`. */
export interface OrderInput {
  id: string;
  status?: string | null;
  date?: string | null;
  customer?: { first_name?: string | null; last_name?: string | null; email_address?: string | null } | null;
  items?: object[] | null;
  quantity?: number | null;
  currency?: string | null;
  sub_total?: string | null;
  grand_total?: string | null;
  shipping_tracking_id?: string | null;
  shipping_label?: string | null;
}

/** The status we reply to Tixstock with: the reseller's own when one was set, otherwise Tixstock's. */
const ORDER_STATUS = 'coalesce(reseller_status, status) as order_status';

const name = (o: OrderInput) =>
  [o.customer?.first_name, o.customer?.last_name]
    .map((s) => s?.trim())
    .filter(Boolean)
    .join(' ') || null;

/** Creates or refreshes an order. A field Tixstock leaves out (ticket.sold often carries only
 * part of the order) keeps its last value. Returns the status to reply with. */
export async function upsertOrder(tx: Tx, o: OrderInput): Promise<{ orderStatus: string | null }> {
  const [row] = await tx<{ order_status: string | null }[]>`
    insert into orders (id, status, date, customer, customer_email, customer_name, items, quantity, currency,
                        sub_total, grand_total, shipping_tracking_id, shipping_label, data)
    values (${o.id}, ${o.status ?? null}, ${o.date ?? null}, ${json(tx, o.customer)},
            ${o.customer?.email_address?.trim().toLowerCase() || null}, ${name(o)}, ${json(tx, o.items)},
            ${o.quantity ?? null}, ${o.currency ?? null}, ${o.sub_total ?? null}, ${o.grand_total ?? null},
            ${o.shipping_tracking_id ?? null}, ${o.shipping_label ?? null}, ${json(tx, o)})
    on conflict (id) do update
       set status = coalesce(excluded.status, orders.status),
           date = coalesce(excluded.date, orders.date),
           customer = coalesce(excluded.customer, orders.customer),
           customer_email = coalesce(excluded.customer_email, orders.customer_email),
           customer_name = coalesce(excluded.customer_name, orders.customer_name),
           items = coalesce(excluded.items, orders.items),
           quantity = coalesce(excluded.quantity, orders.quantity),
           currency = coalesce(excluded.currency, orders.currency),
           sub_total = coalesce(excluded.sub_total, orders.sub_total),
           grand_total = coalesce(excluded.grand_total, orders.grand_total),
           shipping_tracking_id = coalesce(excluded.shipping_tracking_id, orders.shipping_tracking_id),
           shipping_label = coalesce(excluded.shipping_label, orders.shipping_label),
           data = coalesce(orders.data, '{}'::jsonb) || excluded.data,
           updated_at = now()
    returning ${tx.unsafe(ORDER_STATUS)}`;
  return { orderStatus: row!.order_status };
}

/** The order a fulfilment names, created (with nothing but its id) if not known yet. */
export async function ensureOrder(tx: Tx, id: string): Promise<{ orderStatus: string | null; created: boolean }> {
  const [row] = await tx<{ order_status: string | null; created: boolean }[]>`
    insert into orders (id) values (${id})
    on conflict (id) do update set updated_at = now()
    returning ${tx.unsafe(ORDER_STATUS)}, (xmax = 0) as created`;
  return { orderStatus: row!.order_status, created: row!.created };
}

/** The status we would reply with now, or undefined if the order is unknown. */
export async function orderStatusOf(db: Tx | Sql, id: string): Promise<string | null | undefined> {
  const [row] = await db<{ order_status: string | null }[]>`
    select ${db.unsafe(ORDER_STATUS)} from orders where id = ${id}`;
  return row ? row.order_status : undefined;
}

/** PUT /api/orders/:id/status: the reseller's own status (null returns to Tixstock's). The
 * reseller issues order ids, so an order may be given a status before Tixstock mentions it. */
export async function setResellerStatus(
  sql: Sql | Tx,
  id: string,
  status: string | null,
): Promise<{ created: boolean; soldThroughUs: boolean }> {
  const [row] = await sql<{ created: boolean; hold_id: string | null }[]>`
    insert into orders (id, reseller_status) values (${id}, ${status})
    on conflict (id) do update set reseller_status = excluded.reseller_status, updated_at = now()
    returning (xmax = 0) as created, hold_id`;
  return { created: row!.created, soldThroughUs: row!.hold_id !== null };
}

/** Our own sale (order/add accepted by Tixstock): the order, with our status and the hold it
 * was sold from. False when the order id is already taken by another order. */
export async function recordOwnSale(
  tx: Tx,
  o: {
    id: string;
    holdId: string;
    status: string;
    currency: string;
    quantity: number;
    date: string;
    customer: Record<string, unknown> & { first_name?: string; last_name?: string; email_address?: string };
  },
): Promise<boolean> {
  const customerName =
    [o.customer.first_name, o.customer.last_name]
      .map((s) => s?.trim())
      .filter(Boolean)
      .join(' ') || null;
  const rows = await tx`
    insert into orders (id, hold_id, reseller_status, date, customer, customer_email, customer_name, quantity, currency)
    values (${o.id}, ${o.holdId}, ${o.status}, ${o.date}, ${json(tx, o.customer)}, ${o.customer.email_address?.trim().toLowerCase() || null},
            ${customerName}, ${o.quantity}, ${o.currency})
    on conflict (id) do update
       set hold_id = excluded.hold_id, reseller_status = excluded.reseller_status, date = coalesce(orders.date, excluded.date),
           customer = coalesce(orders.customer, excluded.customer), customer_email = coalesce(orders.customer_email, excluded.customer_email),
           customer_name = coalesce(orders.customer_name, excluded.customer_name), quantity = coalesce(orders.quantity, excluded.quantity),
           currency = coalesce(orders.currency, excluded.currency), updated_at = now()
     where orders.hold_id is null or orders.hold_id = excluded.hold_id
    returning id`;
  return rows.length === 1;
}

/** The hold an order was sold from, null when it was not sold through us, undefined if unknown. */
export async function holdOfOrder(db: Sql | Tx, id: string): Promise<string | null | undefined> {
  const [row] = await db<{ hold_id: string | null }[]>`select hold_id from orders where id = ${id}`;
  return row ? row.hold_id : undefined;
}

export interface OrderRow {
  id: string;
  status: string | null;
  order_status: string | null;
  reseller_status: string | null;
  date: string | null;
  customer: Record<string, unknown> | null;
  customer_email: string | null;
  customer_name: string | null;
  items: unknown[] | null;
  quantity: number | null;
  currency: string | null;
  sub_total: string | null;
  grand_total: string | null;
  shipping_tracking_id: string | null;
  shipping_label: string | null;
  hold_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export async function getOrder(sql: Sql, id: string): Promise<OrderRow | undefined> {
  const [row] = await sql<OrderRow[]>`
    select id, status, ${sql.unsafe(ORDER_STATUS)}, reseller_status, date, customer,
           customer_email, customer_name, items, quantity, currency, sub_total::text, grand_total::text,
           shipping_tracking_id, shipping_label, hold_id, created_at, updated_at
      from orders where id = ${id}`;
  return row;
}

export interface OrderSummary {
  id: string;
  order_status: string | null;
  customer_name: string | null;
  customer_email: string | null;
  tickets: number;
  updated_at: Date;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Support search: an exact order id, an exact e-mail address, or part of the customer's name. */
export async function searchOrders(sql: Sql, query: string, limit = 50): Promise<OrderSummary[]> {
  const q = query.trim();
  if (q === '') return [];
  return sql<OrderSummary[]>`
    select o.id, ${sql.unsafe(ORDER_STATUS)}, o.customer_name, o.customer_email,
           (select count(*)::int from tickets t where t.order_id = o.id) as tickets, o.updated_at
      from orders o
     where o.id = ${q} or lower(o.id) = lower(${q}) or o.customer_email = lower(${q})
        or o.customer_name ilike ${'%' + escapeLike(q) + '%'}
     order by (o.id = ${q}) desc, o.updated_at desc
     limit ${limit}`;
}
