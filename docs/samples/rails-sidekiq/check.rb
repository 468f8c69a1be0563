# ruby check.rb (RAILS_ENV=production): an order placed and committed is
# invoiced by the Sidekiq worker; one rolled back leaves no order and no
# job that runs (the worker's log says so, by token).
require_relative "config/environment"

def eventually(what, seconds = 120)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  until (value = yield)
    raise "timed out waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

    sleep 0.05
  end
  value
end

order = Order.place!("A-1", 4200)
eventually("order A-1 to be invoiced") { order.reload.invoiced_at }
puts "order A-1 committed and invoiced"

Order.transaction do
  Order.place!("B-2", 700)   # joins this transaction: the jobs are pushed now
  raise ActiveRecord::Rollback
end
raise "order B-2 exists" if Order.exists?(number: "B-2")
puts "order B-2 rolled back"
