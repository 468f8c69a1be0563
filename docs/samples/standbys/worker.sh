# A worker that reads from a hot standby: wait there, then read there.
# $STANDBY is its connection string; the token and the id come from the task.
state=$(psql "$STANDBY" -X -At -v token="$1" <<'SQL'
SELECT barrier_wait(:'token', '30s');
SQL
)
if [ "$state" = committed ]; then
	# The commit has been replayed here: this standby shows the row.
	psql "$STANDBY" -X -At -c "SELECT 'read on the standby: ' || body FROM notes WHERE id = $2"
else
	echo "$state"
fi
