# In the clone: build the extension and install it into PostgreSQL 15,
# then the Python package, for you only (~/.local).
make PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
sudo make PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install
python3 -m pip install --user --break-system-packages --no-build-isolation --no-deps ./client/python
