-- Reconciliation runs: the inventory compared with Tixstock's tickets/get, each difference a row.
-- One run at a time across all processes: the partial unique index admits one 'running' row; a
-- run whose process died stops heartbeating and is failed by the next run that starts.

create table reconciliations (
  id                bigint generated always as identity primary key,
  status            text not null default 'running' check (status in ('running', 'done', 'failed')),
  repair            boolean not null,
  requested_by      text not null,         -- api, cli, schedule
  started_at        timestamptz not null default now(),
  finished_at       timestamptz,
  heartbeat_at      timestamptz not null default now(),
  pages             integer not null default 0,
  listings_checked  integer not null default 0,
  without_id        integer not null default 0,  -- assigned at Tixstock, not yet published to us: counted only
  imported          integer not null default 0,
  differences       integer not null default 0,
  error             text                   -- why a failed run failed
);
create unique index reconciliations_one_running_idx on reconciliations ((true)) where status = 'running';
create index reconciliations_started_idx on reconciliations (started_at desc, id desc);

create table reconciliation_differences (
  id                 bigint generated always as identity primary key,
  reconciliation_id  bigint not null references reconciliations (id),
  listing_id         text not null,
  field              text not null,         -- quantity, status, display_price, ..., missing_here, missing_at_tixstock
  ours               jsonb,
  tixstock           jsonb,
  action             text not null check (action in ('reported', 'repaired', 'imported', 'skipped')),
  note               text
);
create index reconciliation_differences_run_idx on reconciliation_differences (reconciliation_id, id);

alter table listing_quantity_changes add column reconciliation_id bigint references reconciliations (id);

-- The transaction that last wrote each listing. A run compares a page with our rows only where
-- that transaction had committed before the page was requested (pg_visible_in_snapshot): a
-- webhook or a sale of ours that lands while the run reads Tixstock is newer than the page, and wins.
alter table listings add column changed_xid xid8;
create function listings_changed_xid() returns trigger language plpgsql as $$
begin
  new.changed_xid := pg_current_xact_id();
  return new;
end $$;
create trigger listings_changed_xid before insert or update on listings
  for each row execute function listings_changed_xid();
