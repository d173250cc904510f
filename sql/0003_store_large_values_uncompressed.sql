-- Webhook bodies and ticket PDFs are stored out of line WITHOUT compression. Ticket PDFs are
-- compressed already and a fulfilment's base64 barely compresses, so PostgreSQL's attempt
-- (pglz) only cost time: about half of the time it took to store a 20 MB fulfilment (measured,
-- bench/RESULTS.md). Small bodies are unaffected (they stay in the row); rows already written
-- keep their storage.
alter table deliveries alter column body set storage external;
alter table tickets alter column pdf set storage external;
