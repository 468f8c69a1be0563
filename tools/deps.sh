#!/usr/bin/env bash
# Installs, from Debian's packages, everything that building, demonstrating
# and testing tx_barrier needs.  Idempotent: does nothing when all of it is
# already there.  Must run as root (or through sudo).
set -euo pipefail

PACKAGES=(
	# server, headers and PGXS
	postgresql-15 postgresql-server-dev-15 postgresql-client-15 libpq-dev
	build-essential pkg-config
	# servers of other majors built from source (tools/pg-build.sh)
	bison flex zlib1g-dev
	# TAP tests (PostgreSQL::Test::Cluster) and pgTAP
	libipc-run-perl postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
	# client library checks
	valgrind clang libclang-rt-14-dev cppcheck clang-tidy
	# scale-out tests: PgBouncer; Patroni on etcd (tools/layers/75-ha.sh)
	pgbouncer patroni etcd-server curl
	# benchmark plots (bench/compare.sh)
	gnuplot-nox
	# Celery/Django adapter tests (for /usr/bin/python3)
	redis-server python3 python3-celery python3-django python3-psycopg2
	python3-redis python3-pip python3-setuptools python3-psycopg
	# ... its SQLAlchemy (sync and asyncio) and RQ integrations, and the
	# Flask and FastAPI guides' samples
	python3-sqlalchemy python3-greenlet python3-asyncpg python3-rq
	python3-flask python3-flask-sqlalchemy python3-fastapi python3-httpx
	# the documentation's samples in other languages (docs/samples/), and
	# the Ruby client's tests (Sidekiq, Active Record, Active Job, a Rails
	# application, minitest)
	ruby ruby-pg ruby-sidekiq ruby-activerecord ruby-activejob ruby-railties
	ruby-minitest
	# the documentation site (mkdocs.yml, make docs), its samples (Debian's
	# celery command) and its rendering check (tools/layers/92-docs.sh)
	mkdocs mkdocs-material python3-pymdownx celery chromium
	# Debian packages (tools/layers/80-package.sh) and the PGXN zip
	debhelper dpkg-dev fakeroot postgresql-server-dev-all dh-python python3-all
	pybuild-plugin-pyproject lintian zip unzip
	# throwaway Debian roots: the packages' clean install, and the python
	# and ruby tests on Debian 13's Celery/Django/psycopg, Sidekiq/Rails
	mmdebstrap
)
# Node.js client tests: Debian's nodejs and npm, unless a node and npm are
# already installed (Debian's npm conflicts with NodeSource's nodejs).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "tools/deps.sh: missing packages: ${missing[*]}" >&2
	echo "tools/deps.sh: run as root (or with sudo) to install them" >&2
	exit 1
fi

echo "tools/deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql-common would otherwise create and start a 'main'
# cluster on port 5432 that nothing here uses.
mkdir -p /etc/postgresql-common
if [ ! -e /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
	echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
fi
apt-get update -q
apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}"
