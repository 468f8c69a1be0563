CREATE EXTENSION tx_barrier;   -- once per database; needs a superuser

CREATE TABLE orders (
    id      serial PRIMARY KEY,
    status  text NOT NULL
);
