# frozen_string_literal: true

class Run < ApplicationRecord
  self.table_name = "ruby_runs"
end
