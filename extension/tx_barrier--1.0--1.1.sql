/* extension/tx_barrier--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tx_barrier UPDATE TO '1.1'" to load this file. \quit

-- 1.1 changes only the C module (support for PostgreSQL 16 to 19); the SQL
-- objects are those of 1.0.  SQL changes made for 1.1 go here and into
-- tx_barrier.sql alike.
