#!/usr/bin/env bash
# Release metadata: every version number in the tree agrees with EXTVERSION
# in the Makefile (the one version source), released install and update
# scripts are unchanged, every released version has an update path to
# EXTVERSION, META.json holds what PGXN's meta spec 1.0.0 requires, and
# `make dist` writes a PGXN zip that builds on its own.
. "$TXB_ROOT/tools/results.sh"
set -uo pipefail
cd "$TXB_ROOT" || exit 1
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}

passed=0
failed=0
check() {
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what"
	fi
}
# field FILE SED_EXPRESSION: the first value the expression prints.
field() {
	sed -n "$2" "$1" | head -1
}

ext=$(field Makefile 's/^EXTVERSION *= *//p')
lib="$ext.0"
check "EXTVERSION is MAJOR.MINOR ($ext)" grep -qxE '[0-9]+\.[0-9]+' <<<"$ext"
check "control file default_version = $ext" \
	test "$(field extension/tx_barrier.control "s/^default_version = '\(.*\)'/\1/p")" = "$ext"
check "client/tx_barrier.h TXB_VERSION = $lib" \
	test "$(field client/tx_barrier.h 's/^#define TXB_VERSION "\(.*\)"/\1/p')" = "$lib"
IFS=. read -r v1 v2 v3 <<<"$lib"
check "client/tx_barrier.h TXB_VERSION_NUM = $((v1 * 10000 + v2 * 100 + v3))" \
	test "$(field client/tx_barrier.h 's/^#define TXB_VERSION_NUM \([0-9]*\).*/\1/p')" = \
	"$((v1 * 10000 + v2 * 100 + v3))"
check "client/Makefile derives VERSION = $lib" \
	test "$(make -s -C client -f Makefile -f - print-version PG_CONFIG="$PG_CONFIG" \
		<<<'print-version: ; @echo $(VERSION)')" = "$lib"
check "client/python/pyproject.toml version = $lib" \
	test "$(field client/python/pyproject.toml 's/^version = "\(.*\)"/\1/p')" = "$lib"
check "client/python/tx_barrier/__init__.py __version__ = $lib" \
	test "$(field client/python/tx_barrier/__init__.py 's/^__version__ = "\(.*\)"/\1/p')" = "$lib"
check "client/ruby/lib/tx_barrier/version.rb VERSION = $lib" \
	test "$(field client/ruby/lib/tx_barrier/version.rb 's/^ *VERSION = "\(.*\)"/\1/p')" = "$lib"
# json_field FILE KEY...: the value at that path of a JSON file.
json_field() {
	/usr/bin/python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v)' "$@" 2>/dev/null
}
check "client/node/package.json version = $lib" \
	test "$(json_field client/node/package.json version)" = "$lib"
check "client/node/package-lock.json names version $lib" \
	test "$(json_field client/node/package-lock.json version) $(json_field client/node/package-lock.json packages '' version)" = "$lib $lib"
check "portable/tx_barrier_portable.sql barrier_portable_version() = $ext" \
	test "$(field portable/tx_barrier_portable.sql "/-- the version: EXTVERSION/s/^[^']*'\([^']*\)'.*/\1/p")" = "$ext"
check "client/txb.1 names tx_barrier $lib" \
	grep -q "^\.TH TXB 1 .* \"tx_barrier $lib\"" client/txb.1
check "debian/changelog's upstream version = $ext" \
	test "$(dpkg-parsechangelog -S Version | sed 's/-[^-]*$//')" = "$ext"
changelog_names_majors() {
	grep -A2 -xE "## ${ext//./\\.}( .*)?" CHANGELOG.md | grep -q 'Supports PostgreSQL [0-9]'
}
check "CHANGELOG.md has a section for $ext naming its PostgreSQL majors" changelog_names_majors

# Released install and update scripts never change: a database created or
# updated by one must stay what the next update script expects.
check "released install and update scripts are unchanged" sha256sum --quiet -c - <<'EOF'
4ee984b28e29b242719a6a873879992755d356b0d7670bfe5128f899f7e9ad08  extension/tx_barrier--1.0.sql
42ed391750e8c557221f6c304ca56e578d574b9d5f436e2223abc659b9c35db3  extension/tx_barrier--1.0--1.1.sql
1ef2ab15d24034d349881d6b044509817129284b0d6bb777275946e497272b82  extension/tx_barrier--1.1.sql
EOF
released=$(ls extension/tx_barrier--*.sql | sed -n 's|^extension/tx_barrier--\([0-9.]*\)\.sql$|\1|p')
check "no released install script for the current version $ext (it is built)" \
	test -z "$(grep -xF "$ext" <<<"$released")"
# A chain of update scripts leads from every released version to EXTVERSION.
reaches() {
	local from=$1 next
	[ "$from" = "$ext" ] && return 0
	for next in $(ls extension/tx_barrier--"$from"--*.sql 2>/dev/null |
		sed 's|.*--\([0-9.]*\)\.sql$|\1|'); do
		reaches "$next" && return 0
	done
	return 1
}
for v in $released; do
	check "update path from $v to $ext" reaches "$v"
done

# META.json, against the required fields of https://pgxn.org/spec/ (1.0.0).
meta_check() {
	/usr/bin/python3 - "$lib" <<'EOF'
import json, re, sys
version = sys.argv[1]
semver = re.compile(r"^\d+\.\d+\.\d+$")
m = json.load(open("META.json"))
errors = []
for key in ("name", "abstract", "maintainer", "license", "provides", "version", "meta-spec"):
    if key not in m:
        errors.append("missing required field " + key)
if m.get("meta-spec", {}).get("version") != "1.0.0":
    errors.append("meta-spec.version is not 1.0.0")
if m.get("version") != version:
    errors.append("version %r is not %s" % (m.get("version"), version))
if m.get("license") not in ("postgresql", "bsd", "mit", "apache_2_0", "gpl_3"):
    errors.append("license %r is not a spec license string we use" % m.get("license"))
if m.get("release_status") not in ("stable", "testing", "unstable"):
    errors.append("release_status must be stable, testing or unstable")
provides = m.get("provides", {})
if "tx_barrier" not in provides:
    errors.append("provides has no tx_barrier")
for name, p in provides.items():
    if p.get("version") != version:
        errors.append("provides.%s.version %r is not %s" % (name, p.get("version"), version))
    for key in ("file", "docfile"):
        if key in p:
            try:
                open(p[key]).close()
            except OSError:
                errors.append("provides.%s.%s %s does not exist" % (name, key, p[key]))
for phase, rels in m.get("prereqs", {}).items():
    for rel, reqs in rels.items():
        for name, v in reqs.items():
            if not semver.match(str(v).lstrip(">= ")):
                errors.append("prereqs.%s.%s.%s %r is not a version" % (phase, rel, name, v))
pg = m.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL")
if pg != "15.0.0":
    errors.append("runtime prereq PostgreSQL is %r, not 15.0.0 (15 and later)" % pg)
for key, url in m.get("resources", {}).items():
    u = url.get("web", "") if isinstance(url, dict) else url
    if not u.startswith("https://"):
        errors.append("resources.%s is not an https URL" % key)
for e in errors:
    print("META.json: " + e)
sys.exit(1 if errors else 0)
EOF
}
check "META.json: required fields, versions = $lib, PostgreSQL >= 15" meta_check

# make dist: the committed tree as the PGXN zip; it builds on its own.
dist="$TXB_WORK/dist"
rm -rf "$dist" && mkdir -p "$dist"
zip="$dist/tx_barrier-$ext.zip"
check "make dist writes tx_barrier-$ext.zip" \
	make -s dist PG_CONFIG="$PG_CONFIG" PGXN_ZIP="$zip"
check "the zip holds META.json, LICENSE, the control file and every install and update script" \
	bash -c "unzip -Z1 '$zip' >'$dist/list' &&
		for f in META.json LICENSE CHANGELOG.md Makefile extension/Makefile extension/tx_barrier.control extension/tx_barrier.sql \
			$(ls extension/tx_barrier--*.sql | tr '\n' ' '); do
			grep -qxF \"tx_barrier-$ext/\$f\" '$dist/list' || { echo \"missing \$f\"; exit 1; }
		done"
check "the unpacked zip builds extension/tx_barrier.so and tx_barrier--$ext.sql" \
	bash -c "cd '$dist' && unzip -q '$zip' && make -s -C tx_barrier-$ext PG_CONFIG='$PG_CONFIG' >'$dist/build.log' 2>&1 &&
		test -f tx_barrier-$ext/extension/tx_barrier.so &&
		test -f tx_barrier-$ext/extension/generated/tx_barrier--$ext.sql"
# The built tree has no shared library in its top directory, where a
# python3 started there would import it instead of the Python package.
check "after make, no shared library in the top directory; python3 there imports the Python package" \
	bash -c "cd '$dist/tx_barrier-$ext' && test -z \"\$(ls ./*.so 2>/dev/null)\" &&
		PYTHONPATH=client/python /usr/bin/python3 -c 'import tx_barrier, sys; sys.exit(0 if tx_barrier.__file__.endswith(\"client/python/tx_barrier/__init__.py\") else 1)'"
rm -rf "$dist"

txb_result release "$passed" "$failed"
[ "$failed" -eq 0 ]
