class InvoiceJob
  include Sidekiq::Job
  sidekiq_options retry: 5

  def perform(order_id)
    order = Order.find(order_id)   # committed: always there
    order.update!(invoiced_at: Time.current)
    logger.info("invoiced order #{order.number}")
  end
end
