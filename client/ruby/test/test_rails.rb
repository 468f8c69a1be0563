# frozen_string_literal: true

# Active Job in a Rails application (test/rails_app: an initializer
# installs the barrier, ApplicationJob includes TxBarrier::ActiveJob, the
# framework defaults of the Rails it runs on) with its own Sidekiq worker
# (queue rails) and producer process (test/rails_app/produce.rb).
require_relative "suite"
require "open3"

class TestRails < Minitest::Test
  # Rails 7.2 defers the enqueue of jobs with enqueue_after_transaction_commit
  # (the default of its framework defaults on the Sidekiq adapter).
  DEFERS = ActiveJob.gem_version >= Gem::Version.new("7.2")

  def produce
    prefix = new_tag
    out, err, status = Open3.capture3({ "RAILS_ENV" => "production" }, "ruby",
                                      File.join(__dir__, "rails_app", "produce.rb"), prefix)
    assert status.success?, "produce.rb failed: #{err}"
    assert_equal "done", out.lines.last&.strip, err
    out.lines.grep(/\Ajob /).to_h do |line|
      _, scenario, tag, job_id, token, before, ptoken = line.split
      [scenario, { tag: tag, job_id: job_id, token: token == "-" ? nil : token,
                   before: before == "true", payload_token: ptoken == "-" ? nil : ptoken }]
    end
  end

  def test_rails_application
    jobs = produce
    commit = jobs.fetch("commit")
    assert commit[:token], "ApplicationJob takes a barrier"
    assert commit[:before], "and is pushed before COMMIT"
    run = wait_runs(commit[:tag]).first
    assert_equal ["aj", true, commit[:job_id], commit[:token], "rails"],
                 [run.kind, run.visible, run.jid, run.token, run.role]

    assert_equal %w[aborted], wait_runs(jobs.fetch("rollback")[:tag]).map(&:kind)
    assert_equal %w[aborted], wait_runs(jobs.fetch("savepoint")[:tag]).map(&:kind)
    assert_equal [["aj", true]], wait_runs(jobs.fetch("outer")[:tag]).map { |r| [r.kind, r.visible] }
    refute_equal jobs["savepoint"][:token], jobs["outer"][:token]

    plain = jobs.fetch("plain")
    deferred = jobs.fetch("deferred")
    if DEFERS
      # Rails enqueues these after COMMIT: no barrier (none is needed, and
      # a push after COMMIT has lost the guarantee of running if the
      # process dies in between).
      assert_equal [false, nil], [plain[:before], plain[:payload_token]]
      assert_equal [false, nil, nil], [deferred[:before], deferred[:token], deferred[:payload_token]]
    else
      # No enqueue_after_transaction_commit: pushed before COMMIT, with the
      # Sidekiq middleware's barrier (PlainJob) or Active Job's (DeferredJob).
      assert plain[:before]
      assert_match(/\A\d+\z/, plain[:payload_token].to_s)
      assert deferred[:before]
      assert_equal deferred[:token], deferred[:payload_token]
    end
  end
end
