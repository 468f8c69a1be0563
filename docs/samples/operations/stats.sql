SELECT scope, enqueued, enqueued_committed, enqueued_aborted,
       token_records, tokens_covered,
       waits, waits_committed, waits_aborted, waits_timed_out
  FROM barrier_stats();
