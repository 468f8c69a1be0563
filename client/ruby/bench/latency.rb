# frozen_string_literal: true

# Commit -> job-start latency of a Sidekiq job pushed with a barrier before
# COMMIT (the worker already waits in barrier_wait when the producer
# commits), against the same job pushed after COMMIT (an after_commit
# push), alternating in one run, with a real Sidekiq process.
#
#   DATABASE_URL=postgres://...db_with_tx_barrier REDIS_URL=redis://127.0.0.1:6379 \
#     ruby bench/latency.rb [ROUNDS]
#
# It starts the worker (sidekiq -r bench/latency_worker.rb, concurrency 2)
# and stops it at the end.  The job stamps CLOCK_MONOTONIC when it starts;
# the difference to the moment the producer's COMMIT returned is the
# latency (one monotonic clock for both processes).  It can be negative:
# the waiting worker is woken when the transaction's lock is released, its
# rows already visible, before the COMMIT's answer has reached the producer.
require_relative "latency_worker"

rounds = Integer(ARGV[0] || 200)
deadline = 60.0
now = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
worker = Process.spawn("sidekiq", "-r", File.join(__dir__, "latency_worker.rb"), "-q", "txb_latency",
                       "-c", "2", "-t", "2", out: File::NULL, err: File::NULL, pgroup: true)
at_exit do
  Process.kill("TERM", -worker)
  Process.wait(worker)
rescue Errno::ESRCH, Errno::ECHILD
  nil
end

conn = ActiveRecord::Base.connection
conn.execute("CREATE TEMP TABLE bench_items (id int)")
observer = PG.connect(ENV.fetch("DATABASE_URL"))
waiting = lambda do
  observer.exec("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'transactionid' " \
                "AND query LIKE '%barrier_wait%'").getvalue(0, 0).to_i.positive?
end
stamp = lambda do |key|
  stop = now.call + deadline
  loop do
    value = Sidekiq.redis { |r| r.call("GET", key) }
    return Float(value) if value
    raise "no job start for #{key} after #{deadline}s (is the worker up?)" if now.call > stop

    sleep 0.0005
  end
end

run_id = "txb_latency:#{Process.pid}"
barrier_round = lambda do |i|
  key = "#{run_id}:b:#{i}"
  t0 = nil
  ActiveRecord::Base.transaction do
    conn.execute("INSERT INTO bench_items VALUES (#{i})")
    LatencyJob.perform_async(key)                     # pushed now, with a barrier
    stop = now.call + deadline
    until waiting.call
      raise "the worker never waited" if now.call > stop
    end
  end
  t0 = now.call                                       # COMMIT returned
  (stamp.call(key) - t0) * 1000
end
after_commit_round = lambda do |i|
  key = "#{run_id}:p:#{i}"
  ActiveRecord::Base.transaction do
    conn.execute("INSERT INTO bench_items VALUES (#{i})")
  end
  t0 = now.call                                       # COMMIT returned
  LatencyJob.set(tx_barrier: false).perform_async(key)
  (stamp.call(key) - t0) * 1000
end

10.times do |i| # warm-up, and the worker's start
  barrier_round.call(-i)
  after_commit_round.call(-i)
end
barrier = []
plain = []
rounds.times do |i|
  barrier << barrier_round.call(i)
  plain << after_commit_round.call(i)
end
pct = ->(xs, p) { xs.sort[[xs.size - 1, (p * xs.size).floor].min] }
fmt = ->(x) { format("%8.2f", x) }
puts "commit -> job start, ms, #{rounds} rounds each, alternating (Sidekiq #{Sidekiq::VERSION})"
puts "                              p50      p99"
puts "barrier job (pushed before):#{fmt.call(pct.call(barrier, 0.5))} #{fmt.call(pct.call(barrier, 0.99))}"
puts "after_commit push:          #{fmt.call(pct.call(plain, 0.5))} #{fmt.call(pct.call(plain, 0.99))}"
puts "ratio barrier/after_commit: #{fmt.call(pct.call(barrier, 0.5) / pct.call(plain, 0.5))} " \
     "#{fmt.call(pct.call(barrier, 0.99) / pct.call(plain, 0.99))}"
