// A real BullMQ worker in its own process, for the tests: its processor,
// wrapped by withBarrier(), records each run in node_runs (with whether the
// producer's row was visible) and its 'failed' handler records each failure
// in node_failures.  Usage: node worker.mjs QUEUE '{"concurrency":1,...}'
// (the options are withBarrier's, plus concurrency and pgPort/pgHost to
// reach PostgreSQL through PgBouncer; waiter: {host, port, database} to wait
// on a Waiter there, and record there, instead of on the pool).  Prints
// "ready" once it listens.
// It imports bullmq, pg and tx-barrier by name, so a copy of it in another
// application directory runs on that application's packages.
import pg from 'pg';
import { Worker } from 'bullmq';
import { Waiter } from 'tx-barrier';
import { withBarrier, barrierWaits } from 'tx-barrier/bullmq';

const [queueName, optsJson] = process.argv.slice(2);
const { waiter: waiterConfig, ...opts } = JSON.parse(optsJson ?? '{}');
const connection = { url: process.env.TXB_REDIS_URL, maxRetriesPerRequest: null };
const pool = new pg.Pool({
	host: opts.pgHost, port: opts.pgPort, database: opts.pgDatabase, max: opts.poolMax ?? 4,
});
// A second pool for the bookkeeping, so that it never competes with the
// barrier waits for a connection.
const record = new pg.Pool({ max: 2, ...waiterConfig });
const waiter = waiterConfig
	? new Waiter({ ...waiterConfig, application_name: 'txb_node_bullmq_waiter' }) : undefined;
const barrier = waiter ? { waiter } : { pool };

async function processor(job) {
	const waits = await barrierWaits(job);
	await record.query(
		'INSERT INTO node_runs (queue, job_id, name, visible, waits) ' +
		'SELECT $1, $2, $3, EXISTS (SELECT 1 FROM node_items WHERE id = $4), $5',
		[queueName, job.id, job.name, job.data.item ?? -1, waits]);
	return 'done';
}

const worker = new Worker(queueName, withBarrier(processor, { ...barrier, ...opts }), {
	connection, concurrency: opts.concurrency ?? 4, autorun: false,
});
worker.on('failed', (job, err) => {
	record.query(
		'INSERT INTO node_failures (queue, job_id, err_name, err_kind, message, attempts_made) ' +
		'VALUES ($1, $2, $3, $4, $5, $6)',
		[queueName, job?.id, err?.name, err?.kind, err?.message, job?.attemptsMade]).catch(() => {});
});
worker.on('error', (err) => console.error('worker error', err));

async function shutdown() {
	await worker.close();
	await waiter?.close();
	await pool.end();
	await record.end();
	process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

await worker.waitUntilReady();
worker.run();
process.stdout.write('ready\n');
