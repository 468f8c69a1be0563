--
-- barrier_status(): one session's view of its own and finished transactions.
-- Tokens are captured with \gset so that no xid is printed.
--

-- in autocommit the token's transaction ends with the statement
SELECT barrier_status(barrier_enqueue()) AS own_in_statement;
SELECT barrier_enqueue() AS t_auto \gset
SELECT barrier_status(:'t_auto') AS autocommit;

-- commit
BEGIN;
SELECT barrier_enqueue() AS t_commit \gset
SELECT barrier_status(:'t_commit') AS own_open;
CREATE TEMP TABLE s (i int);
COMMIT;
SELECT barrier_status(:'t_commit') AS after_commit;

-- rollback
BEGIN;
SELECT barrier_enqueue() AS t_abort \gset
ROLLBACK;
SELECT barrier_status(:'t_abort') AS after_rollback;

-- a savepoint rolled back reads aborted although the top level commits;
-- one released follows its top level
BEGIN;
SELECT barrier_enqueue() AS t_top \gset
SAVEPOINT a;
SELECT barrier_enqueue() AS t_rolled_back \gset
SELECT :'t_rolled_back'::xid8 <> :'t_top'::xid8 AS sub_has_own_token;
ROLLBACK TO SAVEPOINT a;
SELECT barrier_status(:'t_rolled_back') AS rolled_back_inside;
SAVEPOINT b;
SELECT barrier_enqueue() AS t_released \gset
RELEASE SAVEPOINT b;
SELECT barrier_status(:'t_released') AS released_inside;
COMMIT;
SELECT barrier_status(:'t_top') AS top,
       barrier_status(:'t_rolled_back') AS rolled_back,
       barrier_status(:'t_released') AS released;

-- a released savepoint under a top level that aborts reads aborted
BEGIN;
SAVEPOINT a;
SELECT barrier_enqueue() AS t_released_aborted \gset
RELEASE SAVEPOINT a;
ROLLBACK;
SELECT barrier_status(:'t_released_aborted') AS released_then_rollback;

-- an error inside a subtransaction (PL/pgSQL exception block)
DO $$
DECLARE
	t xid8;
BEGIN
	BEGIN
		t := barrier_enqueue();
		RAISE division_by_zero;
	EXCEPTION WHEN division_by_zero THEN
		NULL;
	END;
	RAISE NOTICE 'token of the failed block: %', barrier_status(t);
END
$$;
