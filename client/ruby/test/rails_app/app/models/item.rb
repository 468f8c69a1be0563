# frozen_string_literal: true

class Item < ApplicationRecord
  self.table_name = "ruby_items"
end
