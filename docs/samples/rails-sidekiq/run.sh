#!/usr/bin/env bash
# The Rails and Sidekiq guide (docs/guides/rails-sidekiq.md): the gem built
# and installed as install.sh says (into the sample's GEM_HOME), a Rails
# application of this directory's files (initializer, model, Sidekiq job,
# Active Job job, migration run by rake db:migrate), a real Redis and a real
# Sidekiq process; check.rb places an order that commits (the worker
# invoices it, the receipt job runs) and one that rolls back (neither job
# runs: the worker logs both as rolled back, by token).
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_ROOT/docs/samples/rails-sidekiq
app=$SAMPLE_DIR/app
sample_db shop noext   # the migration enables the extension
sample_redis
export RAILS_ENV=production PGDATABASE=shop HOME=$SAMPLE_DIR
export GEM_HOME=$SAMPLE_DIR/gems
GEM_PATH=$GEM_HOME:$(gem env gempath)
export GEM_PATH

echo "== install.sh"
sed -e "s#/path/to/tx_barrier/client/ruby#$TXB_SRC/client/ruby#" \
	-e "s#^gem build tx_barrier.gemspec#gem build tx_barrier.gemspec -o $SAMPLE_DIR/tx_barrier-1.2.0.gem#" \
	-e "s#^gem install --local tx_barrier-1.2.0.gem#gem install --local --no-document $SAMPLE_DIR/tx_barrier-1.2.0.gem#" \
	"$here/install.sh" >"$SAMPLE_DIR/install.sh"
bash -e "$SAMPLE_DIR/install.sh" >"$SAMPLE_DIR/gem.log" 2>&1 ||
	sample_fail "install.sh" "$SAMPLE_DIR/gem.log"

mkdir -p "$app"
cp -r "$here"/. "$app/"
cd "$app"
echo "== rake db:migrate"
rake db:migrate >"$SAMPLE_DIR/migrate.log" 2>&1 || sample_fail "rake db:migrate" "$SAMPLE_DIR/migrate.log"
[ "$(sample_psql shop "SELECT count(*) FROM pg_extension WHERE extname = 'tx_barrier'")" = 1 ] ||
	sample_fail "the migration did not enable tx_barrier"

echo "== sidekiq -r ."
sample_background worker_pid "$SAMPLE_DIR/worker.log" sidekiq -r . -c 5
sample_wait_log "$SAMPLE_DIR/worker.log" 'Starting processing|Booted Rails'

echo "== ruby check.rb"
ruby check.rb || sample_fail check.rb "$SAMPLE_DIR/worker.log"
sample_wait_log "$SAMPLE_DIR/worker.log" 'receipt for order A-1: 4200 cents'
sample_wait_log "$SAMPLE_DIR/worker.log" 'InvoiceJob jid=[0-9a-f]+ not run: the transaction of token [0-9]+ rolled back'
sample_wait_log "$SAMPLE_DIR/worker.log" 'ReceiptJob job_id=[0-9a-f-]+ not run: the transaction of token [0-9]+ rolled back'
grep -q 'invoiced order A-1' "$SAMPLE_DIR/worker.log" ||
	sample_fail "no invoice for A-1" "$SAMPLE_DIR/worker.log"
! grep -q 'order B-2' "$SAMPLE_DIR/worker.log" ||
	sample_fail "a job of the rolled-back order ran" "$SAMPLE_DIR/worker.log"
grep -E 'order A-1|rolled back' "$SAMPLE_DIR/worker.log"
echo "rails-sidekiq: ok"
