# Producer in Ruby (ruby-pg): ruby producer.rb TEXT
require "pg"

conn = PG.connect                                  # PG* environment variables
conn.exec("BEGIN")
note_id = conn.exec_params("INSERT INTO notes (body) VALUES ($1) RETURNING id", [ARGV[0]]).getvalue(0, 0)
token = conn.exec("SELECT barrier_enqueue()").getvalue(0, 0)
# Publish before COMMIT: here, one line to stdout for whoever runs the worker.
puts "token #{token} note #{note_id}"
$stdout.flush
print "COMMIT or ROLLBACK? "
conn.exec($stdin.gets.strip.upcase == "COMMIT" ? "COMMIT" : "ROLLBACK")
conn.close
