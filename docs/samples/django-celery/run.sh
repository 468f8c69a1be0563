#!/usr/bin/env bash
# The Django + Celery guide (docs/guides/django-celery.md), its files as the
# page shows them: the DBA creates the extension for a non-superuser
# application role, `manage.py migrate` runs as that role, a real Celery
# worker (Redis broker) ships committed orders and does not run the task of
# a rolled-back one, plain .delay() inside atomic() takes a barrier, eager
# mode runs the task inside the transaction and after a rollback, and
# Django's test runner passes with the template database, and fails
# without it (permission denied, or BarrierExtensionMissing when the test
# database is built without migrations).
. "$TXB_ROOT/docs/samples/lib.sh"

here=$TXB_SRC/docs/samples/django-celery
dir=$SAMPLE_DIR
cleanup_dbs() {
	local -x PGUSER=postgres
	local db
	for db in test_shop shop shop_template; do
		sample_psql postgres "ALTER DATABASE $db IS_TEMPLATE false" >/dev/null 2>&1 || true
		sample_psql postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)"
	done
	sample_psql postgres "DROP ROLE IF EXISTS shop_app"
}
cleanup_dbs
txb_on_exit cleanup_dbs

echo "== dba.sql, as postgres"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$here/dba.sql"

sample_python_package
sample_redis
export PGUSER=shop_app WAREHOUSE_LOG=$dir/warehouse.log
cd "$here"

echo "== manage.py migrate, as shop_app (not a superuser)"
"$PY" manage.py migrate --noinput >"$dir/migrate.log" 2>&1 || sample_fail migrate "$dir/migrate.log"
grep -q 'Applying shop.0001_initial... OK' "$dir/migrate.log" || sample_fail migrate "$dir/migrate.log"
[ "$(sample_psql shop "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" = f ]

echo "== the worker: python3 -m celery -A proj worker --loglevel=INFO"
sample_celery_worker "$dir/worker.log" "$here" proj

echo "== check.py"
"$PY" check.py || sample_fail check.py "$dir/worker.log"
grep -E 'shop.tasks.ship_order\[.*\] not run' "$dir/worker.log"

echo "== manage.py test, with the template that has the extension"
"$PY" manage.py test shop --noinput >"$dir/test.log" 2>&1 || sample_fail "manage.py test" "$dir/test.log"
grep -qE '^OK$' "$dir/test.log" || sample_fail "manage.py test" "$dir/test.log"
echo "passed"

# Two variants of the settings, for what happens without the template.
mkdir -p "$dir/variants"
cat >"$dir/variants/settings_notemplate.py" <<'PY'
from proj.settings import *  # noqa: F401,F403
DATABASES["default"]["TEST"] = {}
PY
cat >"$dir/variants/settings_nomigrations.py" <<'PY'
from settings_notemplate import *  # noqa: F401,F403
MIGRATION_MODULES = {"shop": None}
PY
export PYTHONPATH=$dir/variants:$PYTHONPATH

echo "== manage.py test, no template: the migration cannot create the extension"
if "$PY" manage.py test shop --noinput --settings=settings_notemplate >"$dir/test-notemplate.log" 2>&1; then
	sample_fail "tests passed without the extension" "$dir/test-notemplate.log"
fi
grep -q 'permission denied to create extension "tx_barrier"' "$dir/test-notemplate.log" ||
	sample_fail "no permission error" "$dir/test-notemplate.log"
grep 'permission denied' "$dir/test-notemplate.log" | head -1

echo "== manage.py test, no template, no migrations: BarrierExtensionMissing"
if "$PY" manage.py test shop --noinput --settings=settings_nomigrations >"$dir/test-nomig.log" 2>&1; then
	sample_fail "tests passed without the extension" "$dir/test-nomig.log"
fi
grep -q 'tx_barrier.BarrierExtensionMissing: the tx_barrier functions are not found in database .test_shop.' "$dir/test-nomig.log" ||
	sample_fail "no BarrierExtensionMissing" "$dir/test-nomig.log"
grep 'BarrierExtensionMissing:' "$dir/test-nomig.log" | head -1
echo "django-celery: ok"
