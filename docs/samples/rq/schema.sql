-- The application's database: the extension (as a superuser, once) and
-- the sample's table.
CREATE EXTENSION IF NOT EXISTS tx_barrier;

CREATE TABLE reports (
    id       bigserial PRIMARY KEY,
    title    text NOT NULL,
    rendered boolean NOT NULL DEFAULT false
);
