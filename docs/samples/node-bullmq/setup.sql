CREATE EXTENSION tx_barrier;          -- needs a superuser, once per database
CREATE TABLE users (
    id        serial PRIMARY KEY,
    email     text NOT NULL,
    welcomed  boolean NOT NULL DEFAULT false
);
