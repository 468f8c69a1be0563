CREATE EXTENSION tx_barrier;      -- needs a superuser, once per database
CREATE TABLE invoices (id serial PRIMARY KEY, amount int NOT NULL);
