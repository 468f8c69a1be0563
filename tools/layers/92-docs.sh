#!/usr/bin/env bash
# The documentation site (mkdocs.yml, docs/), on the host's major only:
#   build        mkdocs build --strict into a scratch directory: a warning
#                (a broken page link, a missing snippet file) fails it  (1 test)
#   samples      every docs/samples/*/run.sh against the shared server, as
#                docs/samples/README.md describes                  (1 test each)
#   render       every page of the built site loaded in headless chromium
#                from a loopback HTTP server, all in one chromium
#                (tools/docs_render.py)                              (1 test)
#   links        no internal link or anchor of the rendered pages is
#                broken (tools/docs_links.py)                        (1 test)
#   screenshots  the landing page and a guide, saved as PNGs into
#                $TXB_WORK/docs/                                     (1 test)
. "$TXB_ROOT/tools/results.sh"
. "$TXB_ROOT/tools/cluster.sh"
set -u

out="$TXB_WORK/docs"
rm -rf "$out"
mkdir -p "$out"
chmod 755 "$out"
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "docs: ok - $1"; }
fail() {
	failed=$((failed + 1))
	echo "docs: FAILED - $1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		echo "--- $2 (last 40 lines)"
		tail -n 40 "$2"
	fi
}
http_pid=
stop_http() {
	[ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null && wait "$http_pid" 2>/dev/null
	http_pid=
}
trap stop_http EXIT
finish() {
	stop_http
	txb_result docs "$passed" "$failed"
	[ "$failed" -eq 0 ]
	exit
}

# ------------------------------------------------------------------ build
site="$out/site"
if (cd "$TXB_SRC" && timeout 300 mkdocs build --strict --site-dir "$site") \
	>"$out/build.log" 2>&1 && [ -f "$site/index.html" ]; then
	pass "mkdocs build --strict ($(find "$site" -name '*.html' | wc -l) pages)"
else
	fail "mkdocs build --strict" "$out/build.log"
	finish
fi

# ------------------------------------------------------------------ samples
for run in "$TXB_SRC"/docs/samples/*/run.sh; do
	[ -f "$run" ] || continue
	name=$(basename "$(dirname "$run")")
	sample_dir="$out/samples/$name"
	mkdir -p "$sample_dir"
	chmod 755 "$out/samples" "$sample_dir"
	t0=$SECONDS
	if (cd "$sample_dir" && TXB_SAMPLE_DIR="$sample_dir" \
		timeout -k 10 900 bash "$run") >"$out/sample-$name.log" 2>&1; then
		pass "docs/samples/$name/run.sh ($((SECONDS - t0)) s)"
	else
		fail "docs/samples/$name/run.sh (exit $?, $((SECONDS - t0)) s)" "$out/sample-$name.log"
	fi
done

# ------------------------------------------------------------------ render
# Headless chromium with a new empty profile, a time limit, and no network
# beyond the loopback server.
port=$(txb_free_port)
/usr/bin/python3 -m http.server "$port" --bind 127.0.0.1 --directory "$site" \
	>"$out/http.log" 2>&1 &
http_pid=$!
txb_wait_for "(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && echo up" up 500 ||
	{ fail "HTTP server for the site" "$out/http.log"; finish; }

chrome() {	# PROFILE_NAME ARGS...: headless chromium, at most 60 s
	local profile="$out/chromium/$1"
	shift
	rm -rf "$profile"
	mkdir -p "$profile"
	timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --user-data-dir="$profile" "$@"
}

# Every page in one chromium (tools/docs_render.py drives it over the
# DevTools protocol), each page's rendered DOM into $doms.
doms="$out/dom"
mapfile -t pages < <(cd "$site" && find . -name '*.html' ! -path './assets/*' | sed 's#^\./##' | sort)
n=${#pages[@]}
timeout -k 5 700 /usr/bin/python3 "$TXB_ROOT/tools/docs_render.py" "http://127.0.0.1:$port" \
	"$doms" "${pages[@]}" >"$out/render.log" 2>>"$out/chromium.log"
cat "$out/render.log"
bad=$(grep -c '^not rendered' "$out/render.log")
for page in "${pages[@]}"; do
	if ! grep -q 'class="md-content"' "$doms/$page" 2>/dev/null; then
		grep -q "^not rendered: $page " "$out/render.log" ||
			{ echo "not rendered (no material content): $page"; bad=$((bad + 1)); }
	fi
done
if [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]; then
	pass "headless chromium rendered all $n pages with the material theme"
else
	fail "headless chromium rendered $((n - bad)) of $n pages" "$out/chromium.log"
fi

# ------------------------------------------------------------------ links
if /usr/bin/python3 "$TXB_ROOT/tools/docs_links.py" "$site" "$doms" >"$out/links.log" 2>&1; then
	pass "internal links and anchors: $(tail -1 "$out/links.log")"
else
	grep '^broken' "$out/links.log" | head -40
	fail "internal links and anchors: $(tail -1 "$out/links.log")"
fi

# ------------------------------------------------------------------ screenshots
shots=()
ok=1
for page in index.html guides/django-celery.html; do
	png="$out/$(echo "${page%.html}" | tr / -).png"
	(cd "$out" && chrome shot --hide-scrollbars --window-size=1280,1000 \
		--screenshot="$png" "http://127.0.0.1:$port/$page") >>"$out/chromium.log" 2>&1
	if [ "$(head -c 8 "$png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
		shots+=("$png")
	else
		ok=0
	fi
done
if [ $ok = 1 ]; then
	pass "screenshots: ${shots[*]}"
else
	fail "screenshots of index.html and guides/django-celery.html" "$out/chromium.log"
fi
finish
