-- The application's database: the extension (as a superuser, once) and
-- the table the sample's models map.
CREATE EXTENSION IF NOT EXISTS tx_barrier;

CREATE TABLE orders (
    id       bigserial PRIMARY KEY,
    item     text NOT NULL,
    gift_note text,
    shipped  boolean NOT NULL DEFAULT false
);
