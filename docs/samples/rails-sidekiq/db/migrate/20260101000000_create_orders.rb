class CreateOrders < ActiveRecord::Migration[6.1]
  def change
    # CREATE EXTENSION IF NOT EXISTS tx_barrier: needs a superuser (or
    # run it once as one and keep this line, which then does nothing).
    enable_extension "tx_barrier"

    create_table :orders do |t|
      t.string :number, null: false
      t.integer :total_cents, null: false
      t.datetime :invoiced_at
      t.timestamps
    end
  end
end
