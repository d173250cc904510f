-- Holds and releases recorded by their one-statement path (since that path came in) kept their
-- headers as a JSON string holding the object, not the object: the support page listed them
-- character by character. Turned back into objects; only those rows are strings.
update deliveries set headers = (headers #>> '{}')::jsonb
 where type in ('ticket.hold', 'ticket.release') and jsonb_typeof(headers) = 'string';
