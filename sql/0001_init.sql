-- The delivery log (transactional inbox) and the reseller's inventory: events, listings, the
-- quantity ledger, sales and broker accounts.

create table deliveries (
  id            bigint generated always as identity primary key,
  received_at   timestamptz not null default now(),
  version       text not null,
  type          text,                 -- meta.type, when the body could be read
  path          text not null,        -- request path, e.g. /webhooks/tixstock/ticket-create
  headers       jsonb not null,       -- a few headers for support; never the signature
  body          bytea not null,       -- the raw bytes as received (secrets redacted)
  body_sha256   bytea not null,       -- of the stored body; finds retries of the same webhook
  redacted      boolean not null default false,
  outcome       text not null check (outcome in
                  ('applied', 'rejected', 'duplicate', 'invalid', 'unsupported', 'failed')),
  status        smallint not null,    -- HTTP status answered
  reply         json not null,        -- the JSON body answered (json keeps key order)
  error         text,                 -- why it was not applied (validation issues, exception)
  duplicate_of  bigint references deliveries (id),
  replay_of     bigint references deliveries (id),
  listing_id    bigint,               -- what it touched, for search and support
  event_id      text,
  order_id      text,
  broker_id     text
);
create index deliveries_retry_idx on deliveries (body_sha256, received_at) where outcome = 'applied';
create index deliveries_type_idx on deliveries (type, id);
create index deliveries_outcome_idx on deliveries (outcome, id);
create index deliveries_listing_idx on deliveries (listing_id) where listing_id is not null;

create table events (
  id          text primary key,       -- Tixstock's event id
  name        text not null,
  datetime    text,                   -- as Tixstock sent it, e.g. 2027-03-14T19:30:00+0000
  status      text,
  cancelled   boolean not null default false,
  venue       jsonb,
  data        jsonb not null,         -- the whole event resource as last received
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);

create table brokers (
  id                     text primary key,
  username               text unique,
  password_hash          text,        -- scrypt; never the password
  tixstock_account_open  boolean,
  closed_at              timestamptz, -- set by broker.closed: no more publishing or updating
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now()
);
create sequence broker_id_seq start with 100001;

-- Listing ids are issued by us (reply to ticket.add) and exposed as strings.
create sequence listing_id_seq start with 300001;
create table listings (
  id                      bigint primary key default nextval('listing_id_seq'),
  event_id                text not null references events (id),
  broker_id               text not null,
  status                  text not null default 'published' check (status in ('published', 'deleted')),
  quantity                integer not null check (quantity >= 0),
  -- The last absolute quantity Tixstock set (add, update, sold): a release never lifts above it.
  quantity_ceiling        integer not null check (quantity_ceiling >= 0),
  first_seat              text,
  display_price           jsonb not null, -- ours: Tixstock's estimate with our markup
  tixstock_display_price  jsonb not null,
  proceed_price           jsonb,
  face_value              jsonb,
  seat_details            jsonb,
  ticket                  jsonb,
  data                    jsonb not null, -- the whole listing resource as last received
  created_at              timestamptz not null default now(),
  updated_at              timestamptz not null default now(),
  deleted_at              timestamptz,
  check (quantity <= quantity_ceiling)
);
create index listings_event_idx on listings (event_id, id);
create index listings_broker_idx on listings (broker_id, id);

-- Every change of a listing's quantity, so support can explain any number.
create table listing_quantity_changes (
  id           bigint generated always as identity primary key,
  listing_id   bigint not null references listings (id),
  delivery_id  bigint references deliveries (id),
  reason       text not null,         -- the webhook type
  requested    integer,               -- hold/release/sold quantity or the absolute quantity set
  before       integer,               -- null when the listing was created
  after        integer not null,
  at           timestamptz not null default now()
);
create index listing_quantity_changes_listing_idx on listing_quantity_changes (listing_id, id);

create table listing_sales (
  id             bigint generated always as identity primary key,
  listing_id     bigint not null references listings (id),
  delivery_id    bigint not null references deliveries (id),
  sold_quantity  integer not null,
  quantity_after integer not null,
  first_seat     text,
  order_id       text,
  at             timestamptz not null default now()
);
create index listing_sales_listing_idx on listing_sales (listing_id);
