--
-- Text that is not a number, given where a token is expected.  The xid8
-- input function decides, so the answer differs by major: PostgreSQL 15
-- reads it as token 0, which names no transaction (barrier_input_1.out);
-- 16 on reject the text itself (barrier_input.out).  Either way a clear
-- error, never a wait.
--
SELECT barrier_status('abc');
SELECT barrier_wait('abc', '1 s');
