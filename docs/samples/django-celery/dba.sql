-- Run once by a superuser (the DBA): psql -d postgres -f dba.sql
CREATE ROLE shop_app LOGIN CREATEDB;          -- the application: no superuser
CREATE DATABASE shop OWNER shop_app;
\connect shop
CREATE EXTENSION tx_barrier;

-- Django's test runner copies this template for its test database.
\connect postgres
CREATE DATABASE shop_template OWNER shop_app;
\connect shop_template
CREATE EXTENSION tx_barrier;
ALTER DATABASE shop_template IS_TEMPLATE true;
