#!/bin/sh
# Worker in shell, with psql: worker.sh TOKEN NOTE_ID
state=$(echo "SELECT barrier_wait(:'token', '30s')" | psql -X -At -v token="$1")
if [ "$state" = committed ]; then
	echo "committed: $(echo "SELECT body FROM notes WHERE id = :id" | psql -X -At -v id="$2")"
else
	echo "$state"                                   # aborted, or in progress after 30 s
fi
