#!/usr/bin/env bash
# Builds and installs the extension (into PostgreSQL 15's directories) and
# the C client library with the txb tool (into /usr/local).
set -euo pipefail
TXB_ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
make -s -C "$TXB_ROOT" PG_CONFIG="$PG_CONFIG" >/dev/null
make -s -C "$TXB_ROOT" PG_CONFIG="$PG_CONFIG" install >/dev/null
if [ -f "$TXB_ROOT/client/Makefile" ]; then
	make -s -C "$TXB_ROOT/client" PG_CONFIG="$PG_CONFIG" >/dev/null
	make -s -C "$TXB_ROOT/client" PG_CONFIG="$PG_CONFIG" install >/dev/null
	ldconfig 2>/dev/null || true
fi
