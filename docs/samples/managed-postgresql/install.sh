# As the role that owns the application's database (no superuser), from a
# checkout of the repository:
psql "$DATABASE_URL" -v schema=tx_barrier -f portable/tx_barrier_portable.sql
psql "$DATABASE_URL" -f setup.sql
