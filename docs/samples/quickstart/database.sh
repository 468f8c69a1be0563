# A database role for you (psql then works without sudo), a database,
# the extension and a table.
sudo -u postgres createuser --superuser "$USER"
createdb shop
psql -d shop -f docs/samples/quickstart/setup.sql
