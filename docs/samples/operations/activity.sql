-- Waiting sessions on a primary, with or without preloading.
SELECT pid, application_name, now() - query_start AS waiting_for, query
  FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND wait_event = 'transactionid'
   AND query LIKE '%barrier_wait%';
