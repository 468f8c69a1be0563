-- The application's database: the extension (as a superuser, once) and
-- the sample's table.
CREATE EXTENSION IF NOT EXISTS tx_barrier;

CREATE TABLE signups (
    id       bigserial PRIMARY KEY,
    email    text NOT NULL,
    welcomed boolean NOT NULL DEFAULT false
);

-- What the asyncio consumer (consumer.py) delivered.
CREATE TABLE webhook_deliveries (
    signup_id bigint PRIMARY KEY,
    email     text NOT NULL
);
