-- The clients call the functions unqualified: put the schema on the path.
GRANT USAGE ON SCHEMA tx_barrier TO worker;
ALTER DATABASE shop SET search_path = "$user", public, tx_barrier;

CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
GRANT SELECT ON orders TO worker;
