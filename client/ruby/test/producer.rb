# frozen_string_literal: true

# A producer in a process of its own, for the tests that kill it:
#   ruby producer.rb hold TAG ID      BEGIN, the item, the job pushed; prints
#                                     "token TOKEN JID" and waits, transaction
#                                     open (other lines on stdout are Sidekiq's)
#   ruby producer.rb commit-kill TAG ID
#                                     the same, then COMMIT, and SIGKILL to
#                                     itself from the first after_commit
#                                     callback: no after_commit hook runs
$LOAD_PATH.unshift(__dir__)
require "support"

mode, tag, id = ARGV
ActiveRecord::Base.establish_connection(TestEnv.ar_config(TestEnv.db))
TxBarrier::Sidekiq.install

class KillingItem < Item
  after_commit { Process.kill(:KILL, Process.pid) }
end

ActiveRecord::Base.transaction do
  (mode == "commit-kill" ? KillingItem : Item).create!(id: id.to_i, tag: tag)
  jid = RecordJob.perform_async(tag, id.to_i)
  token = TxBarrier.enqueue(ActiveRecord::Base.connection)
  $stdout.puts "token #{token} #{jid}"
  $stdout.flush
  $stdin.gets if mode == "hold"
end
warn "producer: still alive after COMMIT"
exit 3
