-- Producer, in the transaction that writes:
BEGIN;
INSERT INTO notes (body) VALUES ('hello');
SELECT barrier_enqueue();               -- the token, e.g. 1234: publish it now
COMMIT;                                 -- (or ROLLBACK)

-- Worker, on any connection to the same cluster, in autocommit:
SELECT barrier_wait('1234', '30s');     -- committed | aborted | in progress
SELECT body FROM notes WHERE id = 1;    -- then read: the row is visible
