-- Who waits on what, for how long, blocked by whom (needs preloading).
SELECT w.pid, a.usename, a.application_name, w.token,
       now() - w.waiting_since AS waiting_for, pg_blocking_pids(w.pid) AS blocked_by
  FROM barrier_waiters() w JOIN pg_stat_activity a USING (pid)
 ORDER BY w.waiting_since;
