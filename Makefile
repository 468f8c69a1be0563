# tx_barrier: the pg_regress, isolation and TAP tests of the extension (a
# PGXS makefile with tests only), and all/install/clean of the server module,
# which extension/Makefile builds in extension/.  The C client library has
# its own Makefile in client/.

# The one version source: the control file, client/, debian/ and META.json
# are checked against it (tools/layers/06-release.sh).
EXTVERSION = 1.2

REGRESS = barrier_surface barrier_input barrier_status barrier_wait_local \
	barrier_enqueue barrier_wait_any
REGRESS_OPTS = --inputdir=. --load-extension=tx_barrier

ISOLATION = wait_commit wait_abort wait_savepoint wait_prepared wait_all \
	wait_nested_savepoint wait_timeout wait_deadlock wait_snapshot
ISOLATION_OPTS = --load-extension=tx_barrier
# Specs that need tx_barrier in shared_preload_libraries: the isolation
# layer (tools/layers/20-isolation.sh) runs them, with ISOLATION set to this
# list, against a second server that preloads it.
ISOLATION_PRELOADED = wait_any

TAP_TESTS = 1

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The module itself: extension/Makefile, run in extension/ (or, in a VPATH
# build, in the build directory's extension/).
EXTENSION_MAKE = $(MKDIR_P) extension && $(MAKE) -C extension \
	-f $(abspath $(srcdir))/extension/Makefile \
	$(if $(VPATH),VPATH=$(abspath $(srcdir))/extension) \
	PG_CONFIG=$(PG_CONFIG) EXTVERSION=$(EXTVERSION)

all: extension-all
install: extension-install
uninstall: extension-uninstall
clean: extension-clean
.PHONY: extension-all extension-install extension-uninstall extension-clean
extension-all extension-install extension-uninstall extension-clean:
	$(EXTENSION_MAKE) $(patsubst extension-%,%,$@)

# The PGXN distribution: the committed tree at HEAD (Releasing in CONTRIBUTING.md).
PGXN_ZIP ?= tx_barrier-$(EXTVERSION).zip
dist:
	git archive --format zip --prefix=tx_barrier-$(EXTVERSION)/ -o $(PGXN_ZIP) HEAD

# Regenerates docs/benchmarks.md and its plots (bench/compare.sh; as root).
.PHONY: bench
bench:
	bench/compare.sh

# Builds the documentation site (mkdocs.yml, docs/) into site/; a warning
# fails it.  The docs test layer also runs its samples and checks its links.
.PHONY: docs
docs:
	mkdocs build --strict --site-dir site
