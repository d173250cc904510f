// Tixstock's ticket.hold and ticket.release, most of its traffic: each is ONE autocommit
// statement that locks the listing, moves its quantity, writes the ledger row, and records the
// webhook's delivery with the reply it answers (so this one statement also writes the delivery
// log, whose other writes are in webhooks/deliveries.ts). It is one flat template on purpose:
// postgres.js rebuilds nested fragments on every call, and this runs thousands of times a second.
import type { PendingQuery } from 'postgres';
import type { Sql } from '../db/connect.js';
import { isListingId } from './listings.js';

export interface QuantityDelta {
  kind: 'ticket.hold' | 'ticket.release';
  /** As the webhook names it (a listing id, or not even one: then "not found"). */
  listingId: string;
  n: number;
}

/** The delivery log row's columns known before the statement (webhooks/deliveries.ts DeliveryValues). */
export interface DeltaDelivery {
  /** Taken ahead from the log's sequence, so that a lost answer can be confirmed by it. */
  id: string;
  version: string;
  type: string | null;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  bodySha256: Buffer;
  redacted: boolean;
  replayOf?: string | null;
}

/** What the delivery's row holds once the statement committed: what the webhook answers. */
export interface RecordedDelta {
  id: string;
  outcome: 'applied' | 'rejected';
  reply: Record<string, unknown>;
  listing_id: string | null;
}

/**
 * A hold takes n off, never below 0; a release puts n back, never above the ceiling (the last
 * absolute quantity Tixstock set). Only a published listing changes; the listing's row lock
 * orders concurrent changes on every dyno. The reply, in the shapes of the other listing
 * webhooks' replies: "3 held on listing 7; quantity 5 -> 2", "held 4 of 5 requested on listing
 * 7; quantity 4 -> 0" when it could not be applied in full, or a rejection (success false) when
 * the listing is missing or deleted. The ledger row's foreign key to the delivery is checked at
 * the end of the statement, once the delivery's row exists.
 */
export function applyQuantityDelta(db: Sql, delta: QuantityDelta, d: DeltaDelivery): PendingQuery<RecordedDelta[]> {
  const { kind, listingId: named, n } = delta;
  const id = isListingId(named) ? named : null;
  const verb = kind === 'ticket.hold' ? 'held' : 'released';
  const notFound = `listing ${named} not found`;
  const deleted = `listing ${named} is deleted`;
  return db<RecordedDelta[]>`
    with old as (
      select id, status, quantity, quantity_ceiling from listings where id = ${id}::bigint for update
    ), changed as (
      update listings l
         set quantity = case when ${kind}::text = 'ticket.hold' then greatest(0, old.quantity - ${n}::int)
                             else least(old.quantity_ceiling, old.quantity + ${n}::int) end,
             updated_at = now()
        from old
       where l.id = old.id and old.status = 'published'
      returning l.id, old.quantity as before, l.quantity as after
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
      select id, ${d.id}::bigint, ${kind}::text, ${n}::int, before, after from changed
    ), d as (
      insert into deliveries (id, version, type, path, headers, body, body_sha256, redacted, outcome, status, reply,
                              replay_of, listing_id)
      overriding system value
      select ${d.id}::bigint, ${d.version}, ${d.type}, ${d.path}, ${db.json(d.headers)}, ${d.body},
             ${d.bodySha256}, ${d.redacted}, case when changed.id is null then 'rejected' else 'applied' end, 200,
             case when old.id is null
                  then json_build_object('listing_id', ${named}::text, 'success', false, 'message', ${notFound}::text,
                                         'errors', json_build_array(${notFound}::text))
                  when changed.id is null
                  then json_build_object('listing_id', ${named}::text, 'success', false, 'message', ${deleted}::text,
                                         'errors', json_build_array(${deleted}::text))
                  else json_build_object('listing_id', ${named}::text, 'success', true, 'message',
                         case when abs(changed.after - changed.before) < ${n}::int
                              then ${verb}::text || ' ' || abs(changed.after - changed.before) || ' of ' || ${`${n} requested on listing ${named}`}::text
                              else ${`${n} ${verb} on listing ${named}`}::text end
                         || '; quantity ' || changed.before || ' -> ' || changed.after) end,
             ${d.replayOf ?? null}::bigint, ${id}::bigint
        from (select) one left join old on true left join changed on true
      returning id::text, outcome, reply, listing_id::text
    )
    select * from d`;
}
