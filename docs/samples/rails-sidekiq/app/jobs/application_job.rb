class ApplicationJob < ActiveJob::Base
  # Barriers for every Active Job class, on any queue adapter.  It also sets
  # Rails 7.2's enqueue_after_transaction_commit to enqueue at once: the
  # barrier replaces it, the two never both apply.
  include TxBarrier::ActiveJob
end
