-- The reseller's own basket holds (POST /api/holds), the ledger rows they make, orders sold
-- through us, and Idempotency-Key records of the sales calls.

create sequence hold_id_seq start with 500001;
create table holds (
  id                bigint primary key default nextval('hold_id_seq'),
  listing_id        bigint not null references listings (id),
  tixstock_hold_id  text unique,          -- meta.hold_id of Tixstock's answer
  requested         integer not null check (requested > 0),
  quantity          integer not null check (quantity >= 0),  -- still held here (off the listing's quantity)
  sold_quantity     integer not null default 0 check (sold_quantity >= 0),
  -- pending: reserved here, Tixstock's answer not known yet; failed: Tixstock refused, undone.
  status            text not null check (status in ('pending', 'active', 'released', 'ordered', 'expired', 'failed')),
  expires_at        timestamptz not null, -- when Tixstock releases it by itself (pending: at the latest)
  -- A release or order/add being sent to Tixstock (one at a time per hold), until busy_until.
  -- An 'order' left behind means order/add's outcome was never learned (see sales/holds.ts).
  busy              text check (busy in ('release', 'order')),
  busy_until        timestamptz,
  order_id          text,
  last_error        text,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now()
);
create index holds_listing_idx on holds (listing_id, id);
create index holds_status_idx on holds (status, id);
create index holds_due_idx on holds (expires_at) where quantity > 0 and status in ('pending', 'active', 'ordered');

alter table listing_quantity_changes add column hold_id bigint references holds (id);
create index listing_quantity_changes_hold_idx on listing_quantity_changes (hold_id) where hold_id is not null;

-- An order sold through us (order/add) names its hold; only those are pushed to order/update.
alter table orders add column hold_id bigint references holds (id);

-- One row per Idempotency-Key, inserted before Tixstock is called: a second request with the
-- same key finds it (in progress: 409; finished: the stored answer).
create table idempotency_keys (
  scope            text not null,         -- 'hold', or 'order:<hold id>'
  key              text not null,
  request_sha256   text not null,         -- of the request's body: a key reused for another request is refused
  hold_id          bigint,
  response_status  smallint,              -- null while in progress
  response         json,
  created_at       timestamptz not null default now(),
  primary key (scope, key)
);
create index idempotency_keys_created_idx on idempotency_keys (created_at);
