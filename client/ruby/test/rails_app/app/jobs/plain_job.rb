# frozen_string_literal: true

# An Active Job class without the integration (not an ApplicationJob): on
# Rails 7.2 with its defaults, Rails defers its enqueue to after COMMIT;
# on 6.1 Sidekiq's middleware takes the barrier.
class PlainJob < ActiveJob::Base
  # a queue no worker serves: the producer looks at its payload there
  queue_as :rails_parked

  def perform(tag, item_id)
    Run.create!(tag: tag, kind: "aj", job: self.class.name, jid: job_id, item_id: item_id,
                visible: Item.exists?(item_id), role: "rails")
  end
end
