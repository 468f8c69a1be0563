# Worker in Ruby (ruby-pg): ruby worker.rb TOKEN NOTE_ID
require "pg"

token, note_id = ARGV
conn = PG.connect                                  # autocommit unless BEGIN is sent
state = conn.exec_params("SELECT barrier_wait($1::xid8, '30s')", [token]).getvalue(0, 0)
if state == "committed"
  body = conn.exec_params("SELECT body FROM notes WHERE id = $1", [note_id]).getvalue(0, 0)
  puts "committed: #{body}"
else
  puts state                                       # aborted, or in progress after 30 s
end
conn.close
