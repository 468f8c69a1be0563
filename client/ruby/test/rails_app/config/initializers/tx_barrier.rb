# frozen_string_literal: true

require "tx_barrier/sidekiq"
require "tx_barrier/active_job"

TxBarrier::Sidekiq.install do |c|
  c.wait_timeout = 1.0   # a transaction open longer: the job is rescheduled
  c.delay = 0.5
  # Dropped jobs leave a row, so that the tests wait for a condition.
  c.on_abort = lambda do |job, token|
    # An aborted Active Job's arguments are not deserialized (its records
    # passed by GlobalID do not exist): its serialized form has them.
    tag, name = if job.is_a?(ActiveJob::Base) then [job.serialize["arguments"][0], job.class.name]
                elsif job["wrapped"] then [job["args"][0]["arguments"][0], job["wrapped"]]
                else [job["args"][0], job["class"]]
                end
    Run.create!(tag: tag, kind: "aborted", job: name, token: token, role: "rails")
  end
end
