# frozen_string_literal: true

# A job that turns Rails' enqueue_after_transaction_commit on again
# (Rails 7.2): Rails enqueues it after COMMIT, and it takes no barrier.
class DeferredJob < RecordRailsJob
  queue_as :rails_parked # no worker serves it: the producer looks there
  self.enqueue_after_transaction_commit = :always if respond_to?(:enqueue_after_transaction_commit=)
end
