#!/usr/bin/env bash
# Builds and installs the extension (into the directories of the server
# whose pg_config PG_CONFIG names, Debian's PostgreSQL 15 by default) and
# the C client library with the txb tool (into /usr/local).
set -euo pipefail
TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# PGXS does not notice a change of server: objects built for another major
# are rebuilt.
stamp="$TXB_ROOT/.built-for"
if [ "$(cat "$stamp" 2>/dev/null)" != "$PG_CONFIG" ]; then
	make -s -C "$TXB_ROOT" PG_CONFIG="$PG_CONFIG" clean >/dev/null
	echo "$PG_CONFIG" >"$stamp"
fi
make -s -C "$TXB_ROOT" PG_CONFIG="$PG_CONFIG" >/dev/null
make -s -C "$TXB_ROOT" PG_CONFIG="$PG_CONFIG" install >/dev/null
if [ -f "$TXB_ROOT/client/Makefile" ]; then
	make -s -C "$TXB_ROOT/client" PG_CONFIG="$PG_CONFIG" >/dev/null
	make -s -C "$TXB_ROOT/client" PG_CONFIG="$PG_CONFIG" install >/dev/null
	ldconfig 2>/dev/null || true
fi
