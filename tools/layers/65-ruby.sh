#!/usr/bin/env bash
# The Ruby client (client/ruby) end to end: the gem built and installed with
# `gem`, a database with the extension, one without, one with the portable
# edition (and one with it in a schema off the search_path), a real Redis, a
# real PgBouncer in transaction pooling mode, a primary with a streaming hot
# standby of its own, five real Sidekiq processes (test/worker.rb: roles
# main, bouncer, standby, portable; and the minimal Rails application
# test/rails_app), and the minitest suite (test/all.rb), on Debian 12's
# Ruby, Sidekiq 6 and Rails 6.1, then on Debian 13's from a cached trixie
# root.  Each minitest test counts as one pass or failure, the gem's
# install as one more per stack, and a short run of the latency benchmark
# one on Debian 12's.
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"

src="$TXB_SRC/client/ruby"
dir="$TXB_WORK/ruby"
rm -rf "$dir"
mkdir -p "$dir/redis" "$dir/gems"
chmod 755 "$dir"
export TXB_RB_DB=txb_ruby TXB_RB_NOEXT_DB=txb_ruby_noext TXB_RB_PORTABLE_DB=txb_ruby_portable
# the portable edition in a schema off the search_path
export TXB_RB_OFFPATH_DB=txb_ruby_offpath
export TXB_RB_DEADLINE=${TXB_RB_DEADLINE:-120}   # a hang guard, not a speed
TXB_RB_EXTVERSION=$(sed -n 's/^EXTVERSION *= *//p' "$TXB_SRC/Makefile")
export TXB_RB_EXTVERSION

redis_pid=
bouncer_pid=
worker_pids=
mounted=
inner=
root=
stop_workers() {
	# shellcheck disable=SC2086
	txb_stop_process_groups $worker_pids
	worker_pids=
}
stop_all() {
	stop_workers
	txb_stop_server "$redis_pid"
	redis_pid=
	if [ -n "$bouncer_pid" ]; then
		txb_pgbouncer_stop "$dir/pgbouncer" "$bouncer_pid"
		bouncer_pid=
	fi
	txb_cluster_stop "$dir/standby"
	txb_cluster_stop "$dir/primary"
	for m in $mounted; do
		umount "$m" || umount -l "$m"
	done
	mounted=
	[ -z "$inner" ] || rm -rf "${root:?}$inner"
	inner=
}
trap stop_all EXIT

passed=0
failed=0
fail_setup() {
	echo "ruby layer: $*" >&2
	txb_result ruby "$passed" $(( failed + 1 ))
	exit 1
}

# 1. The gem, built from its gemspec and installed into a private
# directory (its dependency, pg, is Debian's ruby-pg).
versions='require "pg"; require "sidekiq"; require "rails"; require "active_record"; require "active_job"; require "minitest"
puts "Ruby #{RUBY_VERSION}, Sidekiq #{Sidekiq::VERSION}, Rails #{Rails.version} (Active Record " \
     "#{ActiveRecord.version}, Active Job #{ActiveJob.version}), pg #{PG::VERSION}, minitest #{Minitest::VERSION}"'
v=$(ruby -e "$versions") ||
	fail_setup "Debian 12's Ruby stack is missing (tools/deps.sh installs it)"
echo "Debian 12: $v"
gem_path="$dir/gems:$(gem env gempath)"
if (cd "$src" && gem build tx_barrier.gemspec -o "$dir/tx_barrier.gem") >"$dir/gem.log" 2>&1 &&
	GEM_HOME="$dir/gems" GEM_PATH="$gem_path" gem install --local --no-document \
		"$dir/tx_barrier.gem" >>"$dir/gem.log" 2>&1 &&
	[ -f "$dir/gems/gems/tx_barrier-$TXB_RB_EXTVERSION.0/lib/tx_barrier/sidekiq.rb" ]; then
	echo "gem build, gem install: ok (tx_barrier $TXB_RB_EXTVERSION.0)"
	host_gem=1
else
	cat "$dir/gem.log"
	host_gem=0
fi

# 2. The databases, the tests' tables in each.
psql -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS $TXB_RB_DB WITH (FORCE)" -c "CREATE DATABASE $TXB_RB_DB" \
	-c "DROP DATABASE IF EXISTS $TXB_RB_NOEXT_DB WITH (FORCE)" -c "CREATE DATABASE $TXB_RB_NOEXT_DB" \
	-c "DROP DATABASE IF EXISTS $TXB_RB_PORTABLE_DB WITH (FORCE)" \
	-c "CREATE DATABASE $TXB_RB_PORTABLE_DB" &&
	txb_install_barrier "$TXB_RB_DB" &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$TXB_RB_DB" -f "$src/test/schema.sql" &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$TXB_RB_PORTABLE_DB" -v schema=tx_barrier \
		-f "$TXB_SRC/portable/tx_barrier_portable.sql" >/dev/null 2>&1 &&
	psql -X -q -v ON_ERROR_STOP=1 -d "$TXB_RB_PORTABLE_DB" \
		-c "ALTER DATABASE $TXB_RB_PORTABLE_DB SET search_path = \"\$user\", public, tx_barrier" \
		-f "$src/test/schema.sql" &&
	txb_install_portable_off_path "$TXB_RB_OFFPATH_DB" "$TXB_SRC/portable/tx_barrier_portable.sql" ||
	fail_setup "cannot create the databases"

# 3. Redis; PgBouncer (transaction pooling) in front of the main database;
# a primary of its own with a streaming hot standby.
txb_redis_start "$dir/redis" rport redis_pid || fail_setup "redis did not start"
export REDIS_URL="redis://127.0.0.1:$rport/0"
txb_pgbouncer_start "$dir/pgbouncer" "$TXB_RB_DB" bport bouncer_pid ||
	fail_setup "pgbouncer did not start"
export TXB_PGBOUNCER_PORT=$bport
mkdir -p "$dir/primary" "$dir/standby"
txb_cluster_start_free "$dir/primary" pport || fail_setup "the primary did not start"
txb_standby_start_free "host=127.0.0.1 port=$pport user=postgres dbname=postgres" \
	"$dir/standby" sport || fail_setup "the standby did not start"
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pport" -d postgres \
	-c "CREATE DATABASE $TXB_RB_DB" &&
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pport" -d "$TXB_RB_DB" \
		-c "CREATE EXTENSION tx_barrier" -f "$src/test/schema.sql" ||
	fail_setup "cannot create the primary's database"
export TXB_RB_PRIMARY="host=127.0.0.1 port=$pport dbname=$TXB_RB_DB user=postgres"
export TXB_RB_STANDBY="host=127.0.0.1 port=$sport dbname=$TXB_RB_DB user=postgres"
txb_wait_for "psql -X -At -h 127.0.0.1 -p $sport -d $TXB_RB_DB -c \"SELECT count(*) FROM pg_extension WHERE extname = 'tx_barrier'\"" 1 ||
	fail_setup "the standby never replayed the extension"

# 4. One run of the suite: fresh tables and Redis, the four workers (each
# in a process group of its own), then minitest.  CMD runs ruby (or
# sidekiq) in the gem's test directory's parent with GEM_PATH leading to
# the installed gem; LOGDIR is where the workers' logs are, as this shell
# sees it.
run_suite() {	# LABEL LOGDIR CMD...
	local label=$1 logdir=$2 log="$dir/minitest-$1.log" w role queue conc req
	shift 2
	redis-cli -p "$rport" flushall >/dev/null
	for db in "$TXB_RB_DB" "$TXB_RB_PORTABLE_DB"; do
		psql -X -q -d "$db" -c "TRUNCATE ruby_runs, ruby_items"
	done
	psql -X -q -h 127.0.0.1 -p "$pport" -d "$TXB_RB_DB" -c "TRUNCATE ruby_items"
	for w in main:default:10 bouncer:bouncer:2 standby:standby:3 portable:portable:3 \
		rails:rails:3; do
		IFS=: read -r role queue conc <<<"$w"
		req=./test/worker.rb
		[ "$role" = rails ] && req=./test/rails_app   # the Rails application
		setsid "$@" TXB_RB_ROLE="$role" RAILS_ENV=production sidekiq -r "$req" \
			-q "$queue" -c "$conc" -t 3 >"$logdir/worker-$role.log" 2>&1 &
		worker_pids="$worker_pids $!"
	done
	# The tests wait for the workers' heartbeats first.
	timeout -s TERM -k 10 "${TXB_RB_TIMEOUT:-600}" "$@" ruby test/all.rb -v >"$log" 2>&1
	rc=$?
	cat "$log"
	local summary
	summary=$(grep -E '^[0-9]+ runs, [0-9]+ assertions, [0-9]+ failures, [0-9]+ errors, [0-9]+ skips' "$log" | tail -1)
	if [ -n "$summary" ]; then
		read -r runs _ _ _ fails _ errs _ skips _ <<<"${summary//,/}"
		bad=$(( fails + errs + skips ))  # a skip is a failure: the layer has it all
		ok=$(( runs - bad ))
	else
		# The run did not finish: count the verdicts it printed, and the
		# test it was in as failed.
		ok=$(grep -cE ' = [0-9.]+ s = \.$' "$log")
		bad=$(( $(grep -cE ' = [0-9.]+ s = [FES]$' "$log") + 1 ))
	fi
	[ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
	if [ "$bad" -ne 0 ]; then
		for w in "$logdir"/worker-*.log; do
			echo "--- $w (tail)"
			tail -n 40 "$w"
		done
	fi
	stop_workers
}

# 5. On Debian 12's stack; then the latency benchmark (bench/latency.rb,
# its own Sidekiq process) for a few rounds, so that it cannot rot: it
# must print both figures (not judged: timed tests prove nothing).
if [ "$host_gem" -eq 1 ]; then
	run_suite ruby "$dir" env -C "$src" GEM_PATH="$gem_path"
	case "$PGHOST" in /*|'') bhost=127.0.0.1 ;; *) bhost=$PGHOST ;; esac
	if (cd "$src" && GEM_PATH="$gem_path" REDIS_URL="redis://127.0.0.1:$rport/1" \
		DATABASE_URL="postgres://postgres@$bhost:${PGPORT:-5432}/$TXB_RB_DB" \
		timeout -k 10 300 ruby bench/latency.rb 5) >"$dir/bench.log" 2>&1 &&
		grep -qE '^barrier job \(pushed before\): +-?[0-9.]+ +-?[0-9.]+$' "$dir/bench.log" &&
		grep -qE '^after_commit push: +-?[0-9.]+ +-?[0-9.]+$' "$dir/bench.log"; then
		echo "bench/latency.rb 5: ok"
		cat "$dir/bench.log"
	else
		echo "bench/latency.rb 5: FAILED"
		cat "$dir/bench.log"
		bad=$(( bad + 1 ))
	fi
	txb_result ruby $(( 2 + ok )) "$bad"
	host_bad=$bad
else
	txb_result ruby 0 1
	host_bad=1
fi

# Against the portable edition (TXB_INSTALL_SQL: the portable layer's run
# of the client layers), Debian 12's stack only: the client's SQL is the
# same on both.
if [ -n "${TXB_INSTALL_SQL:-}" ]; then
	stop_all
	trap - EXIT
	exit "$(( host_bad > 0 ))"
fi

# 6. The same on Debian 13's Ruby, Sidekiq 7 and Active Record 7.2: a
# trixie root made with mmdebstrap and cached (txb_trixie_ruby_root),
# entered with chroot.  It shares the network namespace: it reaches the
# servers, PgBouncer and Redis on 127.0.0.1.
txb_trixie_ruby_root root "$dir/mmdebstrap.log" || {
	txb_result ruby-trixie 0 1
	exit 1
}
inner=/tmp/txb-ruby.$$
rm -rf "${root:?}$inner"
mkdir -p "$root$inner/logs"
cp "$dir/tx_barrier.gem" "$root$inner/"
cp -r "$src/test" "$root$inner/test"
for m in proc dev dev/shm; do
	if mount --bind "/$m" "$root/$m"; then
		mounted="$root/$m $mounted"
	else
		fail_setup "cannot mount /$m in $root"
	fi
done
echo "Debian 13: $(chroot "$root" ruby -e "$versions")"
trixie_gem=0
gem_path="$inner/gems:$(chroot "$root" gem env gempath)"
if chroot "$root" env GEM_HOME="$inner/gems" GEM_PATH="$gem_path" gem install --local \
	--no-document "$inner/tx_barrier.gem" >"$dir/gem-trixie.log" 2>&1 &&
	[ -f "$root$inner/gems/gems/tx_barrier-$TXB_RB_EXTVERSION.0/lib/tx_barrier.rb" ]; then
	echo "gem install (Debian 13): ok"
	trixie_gem=1
else
	cat "$dir/gem-trixie.log"
fi
run_suite ruby-trixie "$root$inner/logs" chroot "$root" env -C "$inner" \
	PGHOST=127.0.0.1 GEM_PATH="$gem_path"
trixie_bad=$(( bad + 1 - trixie_gem ))
txb_result ruby-trixie $(( trixie_gem + ok )) "$trixie_bad"
stop_all
trap - EXIT
[ "$host_bad" -eq 0 ] && [ "$trixie_bad" -eq 0 ]
