# frozen_string_literal: true

# A producer of the Rails application in a process of its own, for the
# tests that kill it with SIGKILL:
#   ruby test/rails_app/kill_producer.rb MODE TAG ID
# BEGIN, the item ID, one Active Job job enqueued with perform_later, then
# one line "job JOB_ID TOKEN" (TOKEN: the job's barrier token, - for none;
# other lines on stdout are Sidekiq's), and it reads a line from stdin,
# the transaction open.  Then by MODE:
#   hold         the test kills the process meanwhile
#   commit-kill  on the line "commit": COMMIT, and SIGKILL to itself as
#                soon as the COMMIT returns, before any after-commit
#                callback
# Any other line, or stdin closed: it exits without COMMIT (status 3).
# The job is RecordRailsJob (an ApplicationJob: TxBarrier::ActiveJob, queue
# rails, the item passed by GlobalID), or with MODE plain-commit-kill a
# PlainJob (no TxBarrier::ActiveJob: on Rails 7.2 its enqueue is deferred to
# after COMMIT; queue rails_parked, which no worker serves) and commit-kill.
require_relative "config/environment"

mode, tag, id = ARGV
abort "usage: kill_producer.rb hold|commit-kill|plain-commit-kill TAG ID" unless
  %w[hold commit-kill plain-commit-kill].include?(mode) && id

# Dies right after COMMIT: the real transaction's COMMIT is sent by
# commit_db_transaction; Active Record runs the after_commit callbacks
# (Rails 7.2's deferred enqueue among them) only once it has returned.
module KillRightAfterCommit
  def commit_db_transaction
    super
    Process.kill(:KILL, Process.pid)
  end
end

conn = ActiveRecord::Base.connection
conn.singleton_class.prepend(KillRightAfterCommit) if mode.end_with?("commit-kill")

ActiveRecord::Base.transaction do
  item = Item.create!(id: Integer(id), tag: tag)
  job = if mode == "plain-commit-kill"
          PlainJob.perform_later(tag, item.id)
        else
          RecordRailsJob.perform_later(tag, item)
        end
  token = job.respond_to?(:tx_barrier_token) ? job.tx_barrier_token : nil
  $stdout.puts "job #{job.job_id} #{token || "-"}"
  $stdout.flush
  line = $stdin.gets
  unless mode != "hold" && line&.strip == "commit"
    warn "kill_producer.rb: #{line.inspect} on stdin, leaving without COMMIT"
    exit!(3)
  end
end
warn "kill_producer.rb: still alive after COMMIT"
exit 3
