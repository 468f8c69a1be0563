import pg from 'pg';
import { Worker } from 'bullmq';
import { withBarrier, TransactionAbortedError } from 'tx-barrier/bullmq';
import { connection } from './connection.mjs';

const pool = new pg.Pool({ max: 4 });        // PG* environment variables

const worker = new Worker('emails', withBarrier(async (job) => {
	// Runs only after the producer's transaction committed: the row is there.
	const { rows } = await pool.query(
		'UPDATE users SET welcomed = true WHERE id = $1 RETURNING email', [job.data.userId]);
	console.log(`job ${job.id}: welcomed ${rows[0].email}`);
}, { pool, timeoutMs: 10000 }), { connection, concurrency: 4 });

worker.on('failed', (job, err) => {
	if (err instanceof TransactionAbortedError)
		console.log(`job ${job.id}: its transaction rolled back, not run`);
});
worker.on('ready', () => console.log('worker ready'));

process.on('SIGTERM', async () => {
	await worker.close();                     // waits for jobs in a barrier wait too
	await pool.end();
	process.exit(0);
});
