# config/initializers/tx_barrier.rb
require "tx_barrier/sidekiq"
require "tx_barrier/active_job"

TxBarrier::Sidekiq.install do |config|
  # Jobs pushed inside an open Active Record transaction take a barrier
  # (the default; a job opts out with sidekiq_options tx_barrier: false).
  config.auto = true
  # A worker thread waits at most this long for the producer's COMMIT;
  # then the job goes to the scheduled set and is tried again after delay.
  config.wait_timeout = 5.0
  config.delay = 1.0
end
