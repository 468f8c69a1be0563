# frozen_string_literal: true

require_relative "lib/tx_barrier/version"

Gem::Specification.new do |s|
  s.name        = "tx_barrier"
  s.version     = TxBarrier::VERSION
  s.summary     = "PostgreSQL transaction barriers for Ruby: Sidekiq and Active Job " \
                  "jobs that run only after the transaction that spawned them commits"
  s.description = <<~TEXT
    A Ruby client of the tx_barrier PostgreSQL extension. A producer takes a
    barrier token inside its transaction (barrier_enqueue()) and pushes the job
    at once, before COMMIT; the worker waits for that transaction
    (barrier_wait()) before the job runs: never on uncommitted data, never after
    a rollback, always after a commit, even if the producer dies right after it.
    Includes Sidekiq client and server middleware and an Active Job integration.
  TEXT
  s.license     = "PostgreSQL"
  s.authors     = ["tx_barrier contributors"]
  s.files       = Dir["lib/**/*.rb"] + ["README.md", "tx_barrier.gemspec"]
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 3.1"
  s.add_runtime_dependency "pg", "~> 1.4"
  # Sidekiq (>= 6.4) and Active Job / Active Record (>= 6.1) are optional:
  # require "tx_barrier/sidekiq" or "tx_barrier/active_job" to use them.
  s.metadata["rubygems_mfa_required"] = "true"
end
