# frozen_string_literal: true

# A minimal Rails application of the Ruby tests: Active Record and Active
# Job on Sidekiq, the barrier installed by an initializer (as the guide
# docs/guides/rails-sidekiq.md says), the framework defaults of the Rails
# it runs on (7.2's include enqueue_after_transaction_commit = :default).
# Its Sidekiq worker is `sidekiq -r ./test/rails_app -q rails`; its producers
# test/rails_app/produce.rb and test/rails_app/kill_producer.rb (killed with
# SIGKILL before or right after COMMIT).
require "logger"
require "rails"
require "active_record/railtie"
require "active_job/railtie"
require "sidekiq"

# redis-rb 4.8 (beside Sidekiq 6.4) warns about Sidekiq's own calls.
Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)

module TxbRailsApp
  class Application < Rails::Application
    config.load_defaults Rails::VERSION::STRING.to_f
    config.root = File.expand_path("..", __dir__)
    config.eager_load = false
    config.logger = Logger.new($stderr, level: Logger::WARN)
    config.active_job.queue_adapter = :sidekiq
    config.secret_key_base = "tx_barrier tests"
  end
end
