#!/usr/bin/env bash
# Builds and installs a PostgreSQL server from an upstream source tarball, for
# testing tx_barrier against majors that the host's Debian does not ship, and
# prints the installed pg_config's path.  Builds are cached: a second call
# with the same tarball and flavour prints the path at once.
#
#   tools/pg-build.sh MAJOR [FLAVOUR] [TARBALL]
#
# FLAVOUR is one of
#   plain     an optimised build with TAP support (the default)
#   cassert   --enable-cassert --enable-debug -O1: assertions on
#   asan      cassert plus -fsanitize=address,undefined, for the server and
#             (through PGXS's CFLAGS) every extension built against it
# TARBALL defaults to postgresql-MAJOR.tar.xz in $TXB_PG_SRC, which defaults
# to the first of ../shared/pg-src (beside the checkout) and /work/shared/pg-src
# that exists.  Any upstream release tarball works (postgresql-17.6.tar.bz2
# from postgresql.org, say).
#
# Installs under $TXB_PG_PREFIX (default /opt/tx_barrier/pg)/MAJOR-FLAVOUR.
# Needs bison, flex, zlib and libipc-run-perl (tools/deps.sh installs them).
set -euo pipefail

major=${1:?usage: tools/pg-build.sh MAJOR [plain|cassert|asan] [TARBALL]}
flavour=${2:-plain}
TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${TXB_PG_SRC:-}" ]; then
	for d in "$TXB_ROOT/../shared/pg-src" /work/shared/pg-src; do
		if [ -d "$d" ]; then
			TXB_PG_SRC=$(cd "$d" && pwd)
			break
		fi
	done
fi
tarball=${3:-${TXB_PG_SRC:-.}/postgresql-$major.tar.xz}
if [ ! -f "$tarball" ]; then
	echo "tools/pg-build.sh: no source tarball for PostgreSQL $major ($tarball)" >&2
	echo "tools/pg-build.sh: pass one, or set TXB_PG_SRC to a folder of postgresql-NN.tar.xz" >&2
	exit 1
fi

prefix_root=${TXB_PG_PREFIX:-/opt/tx_barrier/pg}
prefix=$prefix_root/$major-$flavour

configure_opts=(--prefix="$prefix" --enable-tap-tests --without-icu
	--without-readline)
cflags="-O2"
case "$flavour" in
plain) ;;
cassert)
	configure_opts+=(--enable-cassert --enable-debug)
	cflags="-O1 -ggdb -fno-omit-frame-pointer"
	;;
asan)
	configure_opts+=(--enable-cassert --enable-debug)
	# The server's own alignment-dependent tricks (e.g. in the hash and
	# checksum code) trip -fsanitize=alignment; upstream's sanitizer CI
	# disables it, and function (pointer casts of fmgr calls, a check
	# only clang has) the same way.  Reports abort the process, so a
	# finding cannot scroll by unnoticed.
	nosan=alignment
	if "${CC:-gcc}" -fsanitize=undefined -fno-sanitize=function -x c -c -o /dev/null /dev/null 2>/dev/null; then
		nosan=alignment,function
	fi
	cflags="-O1 -ggdb -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize=$nosan -fno-sanitize-recover=all"
	# The programs the build runs (zic at install, configure's probes)
	# and initdb exit with leaks by design: leak checking stays off.
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
	;;
*)
	echo "tools/pg-build.sh: unknown flavour $flavour" >&2
	exit 1
	;;
esac

# One build of a prefix at a time: a second caller (the test runner's
# background builder and a layer, say) waits for the first, then finds it
# built.
mkdir -p "$prefix_root"
exec 9>"$prefix_root/.lock-$major-$flavour"
flock 9

# The stamp names what was built, so a new tarball or flag set rebuilds.
stamp="$(sha256sum "$tarball" | cut -c1-16) ${configure_opts[*]} $cflags"
if [ -x "$prefix/bin/pg_config" ] && [ "$(cat "$prefix/.txb-build" 2>/dev/null)" = "$stamp" ]; then
	echo "$prefix/bin/pg_config"
	exit 0
fi

build=$(mktemp -d "/tmp/txb-pg-$major-$flavour.XXXXXX")
trap 'rm -rf "$build"' EXIT
log=$build/build.log
echo "tools/pg-build.sh: building PostgreSQL $major ($flavour) into $prefix" >&2
tar -xf "$tarball" -C "$build"
src=$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -1)
rm -rf "$prefix"
if ! (
	cd "$src"
	CFLAGS="$cflags" LDFLAGS="$([ "$flavour" = asan ] && echo -fsanitize=address,undefined)" \
		./configure "${configure_opts[@]}"
	make -j"${TXB_PG_BUILD_JOBS:-2}" -s
	make -s install
	# pg_walinspect for the tests that read WAL; the isolation tester
	# for PGXS's ISOLATION.
	make -s -C contrib/pg_walinspect install
	make -s -C src/test/isolation install
) >"$log" 2>&1; then
	tail -40 "$log" >&2
	echo "tools/pg-build.sh: build of PostgreSQL $major failed" >&2
	exit 1
fi
echo "$stamp" >"$prefix/.txb-build"
echo "$prefix/bin/pg_config"
