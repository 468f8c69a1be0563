require "rails"
require "active_record/railtie"
require "active_job/railtie"
require "sidekiq"

module Shop
  class Application < Rails::Application
    config.load_defaults Rails::VERSION::STRING.to_f
    config.root = File.expand_path("..", __dir__)
    config.eager_load = false
    config.logger = Logger.new($stdout)
    config.log_level = :info
    config.active_job.queue_adapter = :sidekiq
    config.secret_key_base = ENV.fetch("SECRET_KEY_BASE", "sample")
  end
end
