-- Retries are recognised per entity: a body is a retry only when it equals the latest applied
-- delivery for the same listing, event, broker or order (`entity`, e.g. 'listing:300001').
-- Deltas (holds, releases) have no entity and never count as that latest delivery.
alter table deliveries add column entity text;

-- The latest applied delivery of each entity, so that finding it is one primary-key lookup
-- whatever the log holds (a walk of the log backwards could visit every hold since).
create table delivery_entities (
  entity       text primary key,
  delivery_id  bigint not null
);

-- Deliveries of the last day get their entity from what they touched, so that retries of
-- webhooks received before this migration are still recognised.
update deliveries
   set entity = case
         when type in ('ticket.add', 'ticket.create', 'ticket.update', 'ticket.delete', 'ticket.sold') then 'listing:' || listing_id
         when type in ('event.update', 'event.cancel') then 'event:' || event_id
         when type in ('broker.open', 'broker.closed') then 'broker:' || broker_id
         when type = 'order.update' then 'order:' || order_id
       end
 where received_at > now() - interval '25 hours' and outcome = 'applied';
insert into delivery_entities (entity, delivery_id)
select entity, max(id) from deliveries where entity is not null group by entity;

-- A stored delivery is replayed at most once. Deliveries replayed several times before this
-- rule keep their history: the later replays are marked and left out of the unique index.
alter table deliveries add column replay_repeated boolean not null default false;
update deliveries d
   set replay_repeated = true
  from (select id, row_number() over (partition by replay_of order by id) as n from deliveries where replay_of is not null) r
 where d.id = r.id and r.n > 1;
create unique index deliveries_replay_once_idx on deliveries (replay_of) where replay_of is not null and not replay_repeated;
