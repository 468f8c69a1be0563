# frozen_string_literal: true

# Records that it ran and whether its item was visible to it.
class RecordRailsJob < ApplicationJob
  queue_as :rails

  def perform(tag, item_id)
    Run.create!(tag: tag, kind: "aj", job: self.class.name, jid: job_id, item_id: item_id,
                visible: Item.exists?(item_id), token: tx_barrier_token,
                waits: tx_barrier_waits, role: "rails")
  end
end
