# frozen_string_literal: true

# Records that it ran and whether its item was visible to it.  The item is
# passed as a record (GlobalID): Active Job looks it up before perform, so
# the barrier must come first.
class RecordRailsJob < ApplicationJob
  queue_as :rails

  def perform(tag, item)
    Run.create!(tag: tag, kind: "aj", job: self.class.name, jid: job_id, item_id: item.id,
                visible: Item.exists?(item.id), token: tx_barrier_token,
                waits: tx_barrier_waits, role: "rails")
  end
end
