-- After installing the new package (or make install), in every database:
SELECT extversion AS before FROM pg_extension WHERE extname = 'tx_barrier';
ALTER EXTENSION tx_barrier UPDATE;
SELECT extversion AS after FROM pg_extension WHERE extname = 'tx_barrier';
