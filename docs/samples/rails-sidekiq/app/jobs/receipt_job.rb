class ReceiptJob < ApplicationJob
  queue_as :default

  def perform(order)
    logger.info("receipt for order #{order.number}: #{order.total_cents} cents")
  end
end
