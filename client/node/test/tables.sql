-- The tables of the Node tests, in the database with the extension (and in
-- the preloaded server's, for the Waiter's BullMQ test): the producers'
-- rows (node_items), and each worker run and failure as worker.mjs records
-- it.  Made by tools/layers/60-node.sh and tools/layers/45-waiters.sh.
CREATE TABLE node_items (id bigint PRIMARY KEY);
CREATE TABLE node_runs (id bigserial PRIMARY KEY, queue text, job_id text, name text,
						visible bool, waits int, at timestamptz DEFAULT clock_timestamp());
CREATE TABLE node_failures (id bigserial PRIMARY KEY, queue text, job_id text,
							err_name text, err_kind text, message text, attempts_made int);
