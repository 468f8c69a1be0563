# frozen_string_literal: true

# The Sidekiq worker of bench/latency.rb: sidekiq -r ./bench/latency_worker.rb
# -q txb_latency.  LatencyJob stamps the moment it starts (CLOCK_MONOTONIC,
# one clock for every process of the machine) into Redis.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__)) # this checkout's gem
require "active_record"
require "sidekiq"
require "tx_barrier/sidekiq"

Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)
ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
TxBarrier::Sidekiq.install { |c| c.wait_timeout = 10.0 }

class LatencyJob
  include Sidekiq::Job
  sidekiq_options queue: "txb_latency", retry: false

  def perform(key)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    Sidekiq.redis { |r| r.call("SET", key, started.to_s, "EX", "600") }
  end
end
