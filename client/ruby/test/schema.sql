-- The tables of the Ruby tests (in each database they use).
CREATE TABLE ruby_items (id bigint PRIMARY KEY, tag text);
CREATE TABLE ruby_runs (
	id bigserial PRIMARY KEY,
	tag text, kind text, job text, jid text, item_id bigint, visible bool,
	token text, waits int, waited bool, attempt int, pid int, role text,
	at timestamptz DEFAULT clock_timestamp());
CREATE SEQUENCE ruby_ids;
