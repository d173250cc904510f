-- Bounded storage. A fulfilment's PDF is kept once, in tickets: its delivery keeps the body with
-- the base64 `file` replaced by a reference to the stored PDF (src/webhooks/stored-body.ts).
-- Raw bodies are dropped after DELIVERY_BODY_RETENTION; the row, its outcome and reply stay.

-- null once retention dropped the body.
alter table deliveries alter column body drop not null;
alter table deliveries
  -- The size of the body as received, when `body` holds less (file replaced, or body dropped).
  add column body_bytes      integer,
  -- Set when the body's file was replaced by a reference: where the reference is in `body`, the
  -- length of the string it replaced, the PDF's sha256 and how its slashes were escaped.
  add column body_file       jsonb,
  add column body_dropped_at timestamptz;
comment on column deliveries.body_sha256 is
  'sha256 of the body as received (secrets redacted), also when the stored body holds a ticket reference or was dropped';

-- A body's reference names its PDF by sha256 (the same bytes whichever order holds them).
create index tickets_sha256_idx on tickets (sha256);

-- One row per retention run: what it dropped. `up_to_id` is how far through the delivery log
-- (by id) runs have got, so the next one starts there instead of scanning from the start.
create table retention_runs (
  id              bigint generated always as identity primary key,
  started_at      timestamptz not null default now(),
  finished_at     timestamptz,
  cutoff          timestamptz,            -- bodies received before it are dropped; null: retention off
  rows            integer not null default 0,
  bytes           bigint not null default 0,
  batches         integer not null default 0,
  up_to_id        bigint,
  database_bytes  bigint                  -- pg_database_size when the run ended
);
