class Order < ApplicationRecord
  # Both jobs are pushed to Redis inside the transaction, before COMMIT,
  # each with a barrier token: they run once it has committed, never if it
  # rolls back, and they are not lost if this process dies after COMMIT.
  def self.place!(number, total_cents)
    transaction do
      order = create!(number: number, total_cents: total_cents)
      InvoiceJob.perform_async(order.id)   # Sidekiq
      ReceiptJob.perform_later(order)      # Active Job (GlobalID: found at once)
      order
    end
  end
end
