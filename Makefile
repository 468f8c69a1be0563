# tx_barrier: PGXS build of the extension and its pg_regress, isolation and
# TAP tests.  The C client library has its own Makefile in client/.

MODULE_big = tx_barrier
OBJS = \
	extension/tx_barrier.o \
	extension/barrier_monitor.o \
	extension/barrier_reserve.o \
	extension/barrier_standby.o \
	extension/barrier_state.o \
	extension/barrier_token.o \
	extension/barrier_wait.o \
	extension/barrier_xact.o

EXTENSION = tx_barrier
# The one version source: the control file, client/, debian/ and META.json
# are checked against it (tools/layers/06-release.sh).
EXTVERSION = 1.1
# extension/ holds the released install scripts (immutable) and the upgrade
# scripts; the current version's is built from extension/tx_barrier.sql.
DATA = $(wildcard extension/tx_barrier--*.sql)
DATA_built = tx_barrier--$(EXTVERSION).sql
PGFILEDESC = "tx_barrier - transaction barriers for asynchronous work"

REGRESS = barrier_surface barrier_input barrier_status barrier_wait_local \
	barrier_enqueue
REGRESS_OPTS = --inputdir=. --load-extension=tx_barrier

ISOLATION = wait_commit wait_abort wait_savepoint wait_prepared wait_all \
	wait_nested_savepoint wait_timeout wait_deadlock wait_snapshot
ISOLATION_OPTS = --load-extension=tx_barrier

TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/extension
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies unless the server was configured with
# --enable-depend.
$(OBJS): extension/barrier_internal.h extension/barrier_compat.h

tx_barrier--$(EXTVERSION).sql: extension/tx_barrier.sql
	cp $< $@

# The PGXN distribution: the committed tree at HEAD (RELEASING in README.md).
PGXN_ZIP ?= tx_barrier-$(EXTVERSION).zip
dist:
	git archive --format zip --prefix=tx_barrier-$(EXTVERSION)/ -o $(PGXN_ZIP) HEAD

# Regenerates docs/benchmarks.md and its plots (bench/compare.sh; as root).
.PHONY: bench
bench:
	bench/compare.sh
