#!/usr/bin/env bash
# Static checks of the extension's C code: it builds with -Wall -Wextra
# -Werror (tools/install.sh already did), and cppcheck and clang-tidy find
# nothing.  One check each.  Run on every major: the compat header
# compiles different code on each.
# majors: all
. "$TXB_ROOT/tools/results.sh"
cd "$TXB_ROOT" || exit 1
inc=$("$PG_CONFIG" --includedir-server)
pass=0
fail=0

if out=$(cppcheck --enable=warning,style,performance,portability --quiet \
	--error-exitcode=1 --suppress=missingIncludeSystem --suppress=toomanyconfigs \
	-I extension extension/*.c 2>&1); then
	pass=$((pass + 1))
	echo "ok - cppcheck"
else
	fail=$((fail + 1))
	echo "not ok - cppcheck"
	echo "$out"
fi

checks='-*,bugprone-*,clang-analyzer-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-clang-analyzer-security.insecureAPI.*,-bugprone-narrowing-conversions,-bugprone-branch-clone'
if out=$(clang-tidy --quiet -checks="$checks" --warnings-as-errors='*' extension/*.c \
	-- -I extension -I "$inc" -D_GNU_SOURCE 2>&1); then
	pass=$((pass + 1))
	echo "ok - clang-tidy"
else
	fail=$((fail + 1))
	echo "not ok - clang-tidy"
	echo "$out" | grep -E 'warning|error' | grep -v '^[0-9]* warnings generated'
fi

txb_result lint "$pass" "$fail"
[ "$fail" -eq 0 ]
