-- Orders, their ticket PDFs and proof URLs (fulfilment webhooks), the job table the mail worker
-- drains, and the record of every mail sent (or, without SMTP_URL, written to the log).

create table orders (
  id                    text primary key,  -- the reseller's order id, as Tixstock sends it
  status                text,              -- Tixstock's status, as last sent
  reseller_status       text,              -- ours, set with PUT /api/orders/:id/status; wins in replies
  date                  text,              -- as Tixstock sent it, e.g. 2027-02-02T10:15:00+0000
  customer              jsonb,
  customer_email        text,              -- lower-cased, for support search
  customer_name         text,              -- "first last", for support search
  items                 jsonb,
  quantity              integer,
  currency              text,
  sub_total             numeric,
  grand_total           numeric,
  shipping_tracking_id  text,
  shipping_label        text,
  data                  jsonb,             -- the whole order resource as last received
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now()
);
create index orders_customer_email_idx on orders (customer_email);
create index orders_updated_idx on orders (updated_at desc);

-- One row per distinct PDF of an order, byte for byte as received (a dyno's disk is wiped on
-- restart, so the database is the only durable place).
create table tickets (
  id                 bigint generated always as identity primary key,
  order_id           text not null references orders (id),
  delivery_id        bigint references deliveries (id),
  kind               text not null check (kind in ('eticket', 'mobile')),
  listing_id         text,
  general_admission  boolean,
  row                text,
  seat               text,
  pdf                bytea not null,
  sha256             text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  bytes              integer not null check (bytes > 0),
  pages              integer not null check (pages > 0),
  received_at        timestamptz not null default now(),
  unique (order_id, sha256)               -- the same PDF sent again is not stored twice
);
create index tickets_received_idx on tickets (received_at desc);

create table order_proof_urls (
  order_id     text not null references orders (id),
  url          text not null,
  delivery_id  bigint references deliveries (id),
  listing_id   text,
  row          text,
  seat         text,
  received_at  timestamptz not null default now(),
  primary key (order_id, url)
);

-- Side work done after the webhook's transaction commits. A worker claims due rows with
-- FOR UPDATE SKIP LOCKED and holds them for a lease; a crashed worker's rows become due again
-- when the lease runs out.
create table jobs (
  id            bigint generated always as identity primary key,
  kind          text not null,
  payload       jsonb not null,
  status        text not null default 'pending' check (status in ('pending', 'running', 'done', 'failed')),
  attempts      integer not null default 0,
  max_attempts  integer not null default 8,
  run_at        timestamptz not null default now(),
  locked_by     text,
  locked_until  timestamptz,
  last_error    text,
  order_id      text,                     -- for support: the order a job is about
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  finished_at   timestamptz
);
create index jobs_due_idx on jobs (run_at, id) where status in ('pending', 'running');
create index jobs_order_idx on jobs (order_id, id);
create index jobs_failed_idx on jobs (updated_at desc) where status = 'failed' or last_error is not null;

-- Every mail handed to the SMTP server, or recorded to the log when SMTP_URL is unset.
create table mails (
  id             bigint generated always as identity primary key,
  job_id         bigint unique references jobs (id),
  kind           text not null,
  order_id       text,
  to_address     text,                    -- null when SUPPORT_EMAIL was unset
  subject        text not null,
  attachments    jsonb not null,          -- [{filename, bytes, sha256}]
  transport      text not null check (transport in ('smtp', 'log')),
  message_id     text,
  smtp_response  text,
  sent_at        timestamptz not null default now()
);
create index mails_order_idx on mails (order_id, id);
