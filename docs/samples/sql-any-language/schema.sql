CREATE EXTENSION tx_barrier;      -- needs a superuser, once per database
CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);
