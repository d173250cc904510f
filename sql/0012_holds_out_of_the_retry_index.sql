-- Holds and releases are deltas: a repeat of one is a new change, never looked up as a retry
-- (findRetryOfEntity uses delivery_entities; findRetryOfBody only looks for its own, absolute
-- types). So the retry index leaves them out: they are most of the log, and their random
-- sha256 keys made every hold insert into (and write WAL for) a page of this index.
-- retryLookup repeats the condition, so that the planner can use the index.
drop index deliveries_retry_idx;
create index deliveries_retry_idx on deliveries (body_sha256, received_at)
  where outcome = 'applied' and type not in ('ticket.hold', 'ticket.release');
