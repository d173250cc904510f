// Tixstock's ticket.hold and ticket.release, most of its traffic: ONE autocommit statement
// applies those that arrive together (db/group-commit.ts): it locks their listings, moves their
// quantities, writes their ledger rows, and records each webhook's delivery with the reply it
// answers (so this one statement also writes the delivery log, whose other writes are in
// webhooks/deliveries.ts). It is one flat template on purpose: postgres.js rebuilds nested
// fragments on every call, and this runs thousands of times a second.
import type { PendingQuery } from 'postgres';
import type { Sql } from '../db/connect.js';
import { isListingId } from './listings.js';

export interface QuantityDelta {
  kind: 'ticket.hold' | 'ticket.release';
  /** As the webhook names it (a listing id, or not even one: then "not found"). */
  listingId: string;
  n: number;
}

/** The delivery log row's columns known before the statement (those of webhooks/deliveries.ts NewDelivery). */
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

/** One delta and the delivery that carries it, as applyQuantityDeltas takes them. */
export interface DeltaOfDelivery {
  delta: QuantityDelta;
  delivery: DeltaDelivery;
}

/** The listing a delta locks (its canonical id), or null when it names none (nothing to lock):
 * deltas given to one applyQuantityDeltas must not share one. */
export function listingLockedBy(delta: QuantityDelta): string | null {
  return isListingId(delta.listingId) ? delta.listingId : null;
}

/**
 * A hold takes n off, never below 0; a release puts n back, never above the ceiling (the last
 * absolute quantity Tixstock set). Only a published listing changes; the listing's row lock
 * orders concurrent changes on every dyno. The reply, in the shapes of the other listing
 * webhooks' replies: "3 held on listing 7; quantity 5 -> 2", "held 4 of 5 requested on listing
 * 7; quantity 4 -> 0" when it could not be applied in full, or a rejection (success false) when
 * the listing is missing or deleted. The ledger rows' foreign key to the delivery is checked at
 * the end of the statement, once the delivery's row exists.
 *
 * Several deltas, of webhooks that arrived together, go in ONE statement (and so one commit,
 * which is most of their cost): each on a different listing (listingLockedBy), the listings
 * locked in id order so that two such statements never wait for each other in a circle. A row
 * back per delta, in no particular order.
 */
export function applyQuantityDeltas(db: Sql, items: DeltaOfDelivery[]): PendingQuery<RecordedDelta[]> {
  // db.array for Buffers and booleans (postgres.js would type an array of them as one value of
  // their type) and for the headers (sent as text[], each parsed as jsonb: never encoded twice).
  const col = <T>(f: (x: DeltaOfDelivery) => T) => items.map(f);
  return db<RecordedDelta[]>`
    with input as (
      select * from unnest(${col((x) => x.delivery.id)}::bigint[], ${col((x) => x.delta.kind)}::text[],
                           ${col((x) => x.delta.listingId)}::text[], ${col((x) => listingLockedBy(x.delta))}::bigint[],
                           ${col((x) => x.delta.n)}::int[], ${col((x) => x.delivery.version)}::text[],
                           ${col((x) => x.delivery.type)}::text[], ${col((x) => x.delivery.path)}::text[],
                           ${db.array(col((x) => JSON.stringify(x.delivery.headers)))}::jsonb[], ${db.array(col((x) => x.delivery.body))}::bytea[],
                           ${db.array(col((x) => x.delivery.bodySha256))}::bytea[], ${db.array(col((x) => x.delivery.redacted))}::bool[],
                           ${col((x) => x.delivery.replayOf ?? null)}::bigint[])
             as t(delivery_id, kind, named, listing_id, n, version, type, path, headers, body, body_sha256, redacted,
                  replay_of)
    ), old as (
      select id, status, quantity, quantity_ceiling from listings
       where id in (select listing_id from input) order by id for update
    ), changed as (
      update listings l
         set quantity = case when i.kind = 'ticket.hold' then greatest(0, old.quantity - i.n)
                             else least(old.quantity_ceiling, old.quantity + i.n) end,
             updated_at = now()
        from old join input i on i.listing_id = old.id
       where l.id = old.id and old.status = 'published'
      returning l.id, old.quantity as before, l.quantity as after
    ), ledger as (
      insert into listing_quantity_changes (listing_id, delivery_id, reason, requested, before, after)
      select c.id, i.delivery_id, i.kind, i.n, c.before, c.after from changed c join input i on i.listing_id = c.id
    ), d as (
      insert into deliveries (id, version, type, path, headers, body, body_sha256, redacted, outcome, status, reply,
                              replay_of, listing_id)
      overriding system value
      select i.delivery_id, i.version, i.type, i.path, i.headers, i.body, i.body_sha256, i.redacted,
             case when c.id is null then 'rejected' else 'applied' end, 200,
             case when old.id is null
                  then json_build_object('listing_id', i.named, 'success', false, 'message', 'listing ' || i.named || ' not found',
                                         'errors', json_build_array('listing ' || i.named || ' not found'))
                  when c.id is null
                  then json_build_object('listing_id', i.named, 'success', false, 'message', 'listing ' || i.named || ' is deleted',
                                         'errors', json_build_array('listing ' || i.named || ' is deleted'))
                  else json_build_object('listing_id', i.named, 'success', true, 'message',
                         case when abs(c.after - c.before) < i.n
                              then v.verb || ' ' || abs(c.after - c.before) || ' of ' || i.n || ' requested on listing ' || i.named
                              else i.n || ' ' || v.verb || ' on listing ' || i.named end
                         || '; quantity ' || c.before || ' -> ' || c.after) end,
             i.replay_of, i.listing_id
        from input i
        cross join lateral (select case when i.kind = 'ticket.hold' then 'held' else 'released' end as verb) v
        left join old on old.id = i.listing_id left join changed c on c.id = i.listing_id
      returning id::text, outcome, reply, listing_id::text
    )
    select * from d`;
}
