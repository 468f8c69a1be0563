// Checks the guide's claims against the running worker (worker.mjs):
// before COMMIT the worker is blocked on the producer's transaction and the
// processor has not run; after COMMIT it runs once and sees the row; after
// ROLLBACK the job fails with TransactionAbortedError, without retries,
// although the producer asked for attempts: 5.
import assert from 'node:assert/strict';
import pg from 'pg';
import { signUp, queue } from './producer.mjs';

const observer = new pg.Client();
await observer.connect();

async function until(what, condition, ms = 30000) {
	const end = Date.now() + ms;
	while (!(await condition())) {
		if (Date.now() > end)
			throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 20));
	}
}

async function workerBlockedOn(token) {
	const { rows } = await observer.query(
		`SELECT count(*) > 0 AS blocked FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		  WHERE l.locktype = 'transactionid' AND NOT l.granted
		    AND l.transactionid::text = ($1::numeric % 4294967296)::text
		    AND a.query LIKE '%barrier_wait%'`, [token]);
	return rows[0].blocked;
}

async function oneRound(email, end) {
	const client = new pg.Client();
	await client.connect();
	await client.query('BEGIN');
	const { userId, job } = await signUp(client, email);
	const token = job.opts.txBarrierToken;
	await until(`the worker blocked on ${token}`, () => workerBlockedOn(token));
	const seen = await observer.query('SELECT count(*)::int AS n FROM users WHERE id = $1', [userId]);
	assert.equal(seen.rows[0].n, 0, 'uncommitted row invisible to others');
	await client.query(end);
	await client.end();
	return { userId, job, token };
}

// COMMIT: the job completes, the row is updated.
const a = await oneRound('ada@example.com', 'COMMIT');
await until('job completed', async () => (await queue.getJob(a.job.id)).getState()
	.then((s) => s === 'completed'));
const { rows } = await observer.query('SELECT welcomed FROM users WHERE id = $1', [a.userId]);
assert.equal(rows[0].welcomed, true);
console.log(`commit: job ${a.job.id} waited on token ${a.token}, then ran: welcomed`);

// ROLLBACK: the job fails once, for good.
const b = await oneRound('bob@example.com', 'ROLLBACK');
await until('job failed', async () => (await (await queue.getJob(b.job.id)).getState()) === 'failed');
const failed = await queue.getJob(b.job.id);
assert.equal(failed.opts.attempts, 5);
assert.equal(failed.attemptsMade, 1, 'no retries');
assert.match(failed.failedReason, /rolled back/);
console.log(`rollback: job ${b.job.id} failed after ${failed.attemptsMade} attempt of 5: ${failed.failedReason}`);

await queue.close();
await observer.end();
