CREATE EXTENSION tx_barrier;          -- needs a superuser, once per database
CREATE TABLE invoices (
    id      bigserial PRIMARY KEY,
    amount  numeric NOT NULL,
    sent    boolean NOT NULL DEFAULT false
);
