#!/usr/bin/env bash
# Debian packages: builds them from the committed tree with
# dpkg-buildpackage (which runs the regress and isolation suites against the
# freshly built extension), checks them with lintian, installs them into a
# clean Debian 12 root with PostgreSQL 15 and no build tree, and runs
# debian/tests/installcheck there, as autopkgtest would, against the
# installed package.
#
# The clean root is txb_package_root's (tools/cluster.sh): a cached
# tarball, which tools/test.sh starts making at the beginning of a run.
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"
set -uo pipefail

# Debian's tools, not the pyenv interpreter first on PATH.
DEB_PATH=/usr/sbin:/usr/bin:/sbin:/bin

version=$(sed -n 's/^EXTVERSION *= *//p' "$TXB_ROOT/Makefile")
work="$TXB_WORK/package"
src="$work/tx-barrier-$version"
root="$work/root"
log="$work/package.log"
mkdir -p "$src" "$root"
: >"$log"

passed=0
failed=0
pass() {
	passed=$((passed + 1))
	echo "ok - $1"
}
fail() {
	failed=$((failed + 1))
	echo "not ok - $1"
	[ -z "${2:-}" ] || tail -n 60 "$2"
}

mounted=()
cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -R "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}"
	done
	# Servers pg_virtualenv left behind stop with their root's mounts.
	rm -rf "$root"
}
trap cleanup EXIT

# ------------------------------------------------------------------ build
# The tree as git sees it (tracked files and new ones not ignored): no
# build products of the working copy leak into the packages.
git -C "$TXB_ROOT" ls-files -co --exclude-standard -z |
	(cd "$TXB_ROOT" && tar --null -T - -cf -) | tar -xf - -C "$src"
# The build must use Debian's interpreter whatever the caller's PATH holds:
# it runs with a python3 first on PATH that has none of Debian's modules
# (as a pyenv or venv interpreter would be).
foreign="$work/foreign-python"
mkdir -p "$foreign"
printf '#!/bin/sh\nexec /usr/bin/python3 -I -S "$@"\n' >"$foreign/python3"
chmod +x "$foreign/python3"
# pg_virtualenv's temporary clusters listen on PGPORT: a free one, not the
# shared server's.
if (cd "$src" && env -u PGHOST -u PGDATABASE PGPORT="$(txb_free_port)" \
	PATH="$foreign:$PATH" dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	pass "dpkg-buildpackage -us -uc -b (build-time installcheck: $(grep -c '\.\.\. ok' "$work/build.log") tests ok)"
else
	fail "dpkg-buildpackage -us -uc -b" "$work/build.log"
fi

debs=()
for pkg in postgresql-15-tx-barrier libtxbarrier1 libtxbarrier-dev txb python3-tx-barrier; do
	deb=$(ls "$work"/${pkg}_"$version"-*_*.deb 2>/dev/null | head -1)
	if [ -n "$deb" ]; then
		debs+=("$deb")
	else
		fail "package $pkg built"
	fi
done
[ ${#debs[@]} -eq 5 ] && pass "5 packages built: $(cd "$work" && ls -s --block-size=K ./*.deb | grep -v dbgsym | awk '{printf "%s %s, ", $2, $1}' | sed 's|\./||g; s/, $//')"

# --pedantic, failing on anything but pedantic notes; overrides are
# documented in debian/common.lintian-overrides.  While a version is in
# development its debian/changelog entry is UNRELEASED (dch -v X.Y-1), which
# lintian reports as such; a release's entry names a distribution.
changes=$(ls "$work"/tx-barrier_"$version"-*.changes 2>/dev/null | head -1)
unreleased=()
[ "$(env PATH="$DEB_PATH" dpkg-parsechangelog -l "$TXB_ROOT/debian/changelog" -S Distribution)" = UNRELEASED ] &&
	unreleased=(--suppress-tags unreleased-changes,unreleased-changelog-distribution)
if [ -n "$changes" ] && env PATH="$DEB_PATH" lintian --fail-on error,warning,info \
	--info --pedantic "${unreleased[@]}" "$changes" >"$work/lintian.log" 2>&1; then
	pass "lintian: $(grep -c '^[EWIP]:' "$work/lintian.log") tags beyond the overrides"
else
	fail "lintian" "$work/lintian.log"
fi

# ------------------------------------------------------------------ clean root
ROOT_TAR=
txb_package_root ROOT_TAR "$work/mmdebstrap.log"
if [ -n "$ROOT_TAR" ] && tar -xf "$ROOT_TAR" -C "$root"; then
	pass "clean Debian 12 root with PostgreSQL 15 ($(basename "$ROOT_TAR"))"
else
	fail "clean Debian 12 root" "$work/mmdebstrap.log"
fi

for m in proc dev sys; do
	mkdir -p "$root/$m"
done
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --rbind /dev "$root/dev" && mounted+=("$root/dev")
mount --make-rslave "$root/dev"
# The root shares the host's network: its clusters need a free port too.
in_root() {
	env -i PATH="$DEB_PATH" LANG=C.UTF-8 PGPORT="$(txb_free_port)" chroot "$root" "$@"
}

mkdir -p "$root/tmp/debs"
cp "${debs[@]}" "$root/tmp/debs/"
if in_root sh -c 'apt-get install -y -q /tmp/debs/*.deb' >"$work/install.log" 2>&1; then
	pass "apt install of the packages in the clean root"
else
	fail "apt install of the packages in the clean root" "$work/install.log"
fi

if [ "$(in_root txb --version 2>&1)" = "txb (tx_barrier) $version.0" ] &&
	in_root test -f /usr/share/man/man1/txb.1.gz; then
	pass "installed txb $version.0 and its man page"
else
	fail "installed txb and its man page"
fi

# The dev package: an application builds against it through pkg-config and
# links the shared library from libtxbarrier1.
cp "$TXB_ROOT/client/examples/wait_for_token.c" "$root/tmp/"
if in_root sh -c 'cd /tmp && cc -o wait_for_token wait_for_token.c $(pkg-config --cflags --libs tx_barrier) &&
	ldd wait_for_token | grep -q "libtxbarrier.so.1 => /"' >"$work/dev.log" 2>&1; then
	pass "an example builds with pkg-config tx_barrier and links libtxbarrier.so.1"
else
	fail "an example builds with pkg-config tx_barrier" "$work/dev.log"
fi

if [ "$(in_root python3 -c 'import tx_barrier; print(tx_barrier.__version__)' 2>&1)" = "$version.0" ]; then
	pass "python3 imports tx_barrier $version.0"
else
	fail "python3 imports tx_barrier"
fi

# autopkgtest's installcheck: the source tree without any build product,
# the extension from the package (pg_virtualenv, as root: a temporary
# cluster owned by postgres).
mkdir -p "$root/tmp/src"
git -C "$TXB_ROOT" ls-files -co --exclude-standard -z |
	(cd "$TXB_ROOT" && tar --null -T - -cf -) | tar -xf - -C "$root/tmp/src"
if in_root sh -c 'cd /tmp/src && debian/tests/installcheck' >"$work/installcheck.log" 2>&1; then
	pass "debian/tests/installcheck against the installed package: $(grep -c '\.\.\. ok' "$work/installcheck.log") tests ok"
else
	fail "debian/tests/installcheck against the installed package" "$work/installcheck.log"
fi
# What ran was the package's module: the source tree holds no build product.
if [ -z "$(find "$root/tmp/src" -name '*.so' -o -name '*.o')" ] &&
	grep -qE 'All [0-9]+ tests passed' "$work/installcheck.log"; then
	pass "installcheck built nothing: the regress suite ran the installed module"
else
	fail "installcheck built nothing" "$work/installcheck.log"
fi

txb_result package "$passed" "$failed"
[ "$failed" -eq 0 ]
