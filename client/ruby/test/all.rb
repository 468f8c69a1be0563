# frozen_string_literal: true

# The whole suite: ruby -Itest test/all.rb -v
Dir[File.join(__dir__, "test_*.rb")].sort.each { |f| require f }
