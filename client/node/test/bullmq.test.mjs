// The BullMQ integration (tx-barrier/bullmq) with real BullMQ workers and
// producers in child processes, a real Redis, a real PostgreSQL and a real
// PgBouncer in transaction pooling mode.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { FlowProducer } from 'bullmq';
import {
	addWithBarrier, addBulkWithBarrier, addFlowWithBarrier, barrierToken, TOKEN_OPTION, WAITS_FIELD,
} from 'tx-barrier/bullmq';
import {
	connection, bouncerPort, uniqueName, newClient, until, itemId, startWorker, startProducer,
	openQueue, runsOf, failuresOf, barrierWaiters,
} from './helpers.mjs';

let db, producer;
const cleanups = [];

before(async () => {
	db = await newClient();
	producer = await newClient();
});

after(async () => {
	for (const c of cleanups.reverse())
		await c();
	await producer.end();
	await db.end();
});

// A fresh queue and a worker process on it.
async function setup(prefix, workerOpts = {}) {
	const name = uniqueName(prefix);
	const queue = await openQueue(name);
	const worker = await startWorker(name, workerOpts);
	cleanups.push(async () => {
		await worker.stop();
		await queue.obliterate({ force: true });
		await queue.close();
	});
	return { name, queue, worker };
}

async function stateOf(queue, id) {
	const job = await queue.getJob(id);
	return job ? job.getState() : 'missing';
}

async function waitsOf(queue, id) {
	const redis = await queue.backend.client;
	return Number(await redis.hget(queue.toKey(id), WAITS_FIELD) ?? 0);
}

async function insertItem(client) {
	const id = itemId();
	await client.query('INSERT INTO node_items (id) VALUES ($1)', [id]);
	return id;
}

test('commit: the job runs once, after COMMIT, and sees the committed row', async () => {
	const { name, queue } = await setup('commit');
	const before0 = await barrierWaiters(db);
	await producer.query('BEGIN');
	const item = await insertItem(producer);
	const job = await addWithBarrier(queue, producer, 'work', { item }, { attempts: 3 });
	assert.deepEqual(job.data, { item }, 'the token is not in the data');
	assert.match(barrierToken(job), /^[0-9]+$/);
	// The worker picked the job up and blocks on the token.
	await until(async () => (await barrierWaiters(db)) > before0, 'the worker to wait');
	assert.deepEqual(await runsOf(db, name), []);
	await producer.query('COMMIT');
	await until(async () => (await stateOf(queue, job.id)) === 'completed', 'the job to complete');
	const runs = await runsOf(db, name);
	assert.equal(runs.length, 1);
	assert.equal(runs[0].visible, true);
});

test('rollback: the job never runs and fails with TransactionAbortedError, without retries', async () => {
	const { name, queue } = await setup('rollback');
	await producer.query('BEGIN');
	const item = await insertItem(producer);
	const job = await addWithBarrier(queue, producer, 'work', { item },
		{ attempts: 5, backoff: { type: 'fixed', delay: 10 } });
	await producer.query('ROLLBACK');
	await until(async () => (await stateOf(queue, job.id)) === 'failed', 'the job to fail');
	const failures = await until(async () => {
		const f = await failuresOf(db, name);
		return f.length ? f : null;
	}, 'the failed handler');
	assert.equal(failures.length, 1);
	assert.equal(failures[0].err_kind, 'TransactionAbortedError');
	assert.equal(failures[0].err_name, 'UnrecoverableError', 'what any copy of BullMQ tests');
	assert.match(failures[0].message, /rolled back/);
	const failed = await queue.getJob(job.id);
	assert.equal(failed.attemptsMade, 1, 'no retries');
	assert.deepEqual(await runsOf(db, name), []);
});

test('a rolled-back savepoint: its job fails, the job of the committed part runs', async () => {
	const { name, queue } = await setup('savepoint');
	await producer.query('BEGIN');
	await producer.query('SAVEPOINT s');
	const lost = await addWithBarrier(queue, producer, 'lost', { item: await insertItem(producer) });
	await producer.query('ROLLBACK TO SAVEPOINT s');
	const item = await insertItem(producer);
	const kept = await addWithBarrier(queue, producer, 'kept', { item });
	assert.notEqual(barrierToken(lost), barrierToken(kept));
	await producer.query('COMMIT');
	await until(async () => (await stateOf(queue, kept.id)) === 'completed', 'the kept job');
	await until(async () => (await stateOf(queue, lost.id)) === 'failed', 'the lost job to fail');
	const runs = await runsOf(db, name);
	assert.deepEqual(runs.map((r) => [r.name, r.visible]), [['kept', true]]);
	const f = await until(async () => (await failuresOf(db, name))[0], 'the failed handler');
	assert.equal(f.err_kind, 'TransactionAbortedError');
});

test('producer SIGKILLed after COMMIT: the job still runs', async () => {
	const { name, queue } = await setup('killcommit');
	const item = itemId();
	const { child, line } = await startProducer(name, item, 'commit');
	const [, jobId] = line.split(' ');
	assert.match(line, /^committed /);
	child.kill('SIGKILL');
	await until(async () => (await stateOf(queue, jobId)) === 'completed', 'the job to complete');
	const runs = await runsOf(db, name);
	assert.equal(runs.length, 1);
	assert.equal(runs[0].visible, true);
});

test('producer SIGKILLed before COMMIT: the job never runs', async () => {
	const { name, queue } = await setup('killopen');
	const item = itemId();
	const { child, line } = await startProducer(name, item, 'hold');
	const [, jobId] = line.split(' ');
	assert.match(line, /^added /);
	child.kill('SIGKILL');
	await until(async () => (await stateOf(queue, jobId)) === 'failed', 'the job to fail');
	const f = await until(async () => (await failuresOf(db, name))[0], 'the failed handler');
	assert.equal(f.err_kind, 'TransactionAbortedError');
	assert.deepEqual(await runsOf(db, name), []);
	const rows = await db.query('SELECT 1 FROM node_items WHERE id = $1', [item]);
	assert.equal(rows.rowCount, 0);
});

test('a transaction open longer than the timeout: the job is delayed, the slot is free, then it runs once', async () => {
	const { name, queue } = await setup('slow', { concurrency: 1, timeoutMs: 200, delayMs: 100 });
	await producer.query('BEGIN');
	const item = await insertItem(producer);
	const job = await addWithBarrier(queue, producer, 'slow', { item });
	await until(async () => (await waitsOf(queue, job.id)) >= 2, 'two barrier delays');
	// With one slot, a plain job still gets through while the transaction is open.
	const plain = await queue.add('plain', {});
	await until(async () => (await stateOf(queue, plain.id)) === 'completed', 'the plain job');
	assert.deepEqual((await runsOf(db, name)).map((r) => r.name), ['plain']);
	assert.notEqual(await stateOf(queue, job.id), 'completed');
	await producer.query('COMMIT');
	await until(async () => (await stateOf(queue, job.id)) === 'completed', 'the slow job');
	const runs = (await runsOf(db, name)).filter((r) => r.name === 'slow');
	assert.equal(runs.length, 1);
	assert.equal(runs[0].visible, true);
	assert.ok(runs[0].waits >= 2, `waits recorded: ${runs[0].waits}`);
	const done = await queue.getJob(job.id);
	assert.equal(done.attemptsMade, 1, 'delays are not attempts');
});

test('maxWaits: a transaction open too long fails the job with BarrierJobError', async () => {
	const { name, queue } = await setup('maxwaits',
		{ concurrency: 1, timeoutMs: 50, delayMs: 20, maxWaits: 3 });
	await producer.query('BEGIN');
	const job = await addWithBarrier(queue, producer, 'stuck', { item: await insertItem(producer) },
		{ attempts: 4 });
	await until(async () => (await stateOf(queue, job.id)) === 'failed', 'the job to fail');
	await producer.query('COMMIT');
	const f = await until(async () => (await failuresOf(db, name))[0], 'the failed handler');
	assert.equal(f.err_kind, 'BarrierJobError');
	assert.equal(f.err_name, 'UnrecoverableError');
	assert.match(f.message, /after 3 barrier delays/);
	assert.equal(await waitsOf(queue, job.id), 4);
	assert.deepEqual(await runsOf(db, name), []);
});

test('outside a transaction addWithBarrier is a plain add', async () => {
	const { name, queue } = await setup('plain');
	const item = await insertItem(producer);
	const job = await addWithBarrier(queue, producer, 'plain', { item });
	assert.equal(barrierToken(job), undefined);
	assert.equal(job.opts[TOKEN_OPTION], undefined);
	await until(async () => (await stateOf(queue, job.id)) === 'completed', 'the job');
	assert.equal((await runsOf(db, name)).length, 1);
});

test('addBulkWithBarrier: one token for all; none runs before COMMIT', async () => {
	const { name, queue } = await setup('bulk');
	await producer.query('BEGIN');
	const item = await insertItem(producer);
	const jobs = await addBulkWithBarrier(queue, producer,
		[1, 2, 3].map((i) => ({ name: `b${i}`, data: { item } })));
	assert.equal(new Set(jobs.map(barrierToken)).size, 1);
	await until(async () => (await barrierWaiters(db)) >= 3, 'three waits');
	assert.deepEqual(await runsOf(db, name), []);
	await producer.query('COMMIT');
	await until(async () => (await runsOf(db, name)).length === 3, 'three runs');
	assert.ok((await runsOf(db, name)).every((r) => r.visible));
});

test('flows: children and parent wait on one token; a rolled-back flow fails its children and never runs the parent', async () => {
	const { name, queue } = await setup('flow');
	const flows = new FlowProducer({ connection });
	cleanups.push(() => flows.close());
	const flow = (item, suffix) => ({
		name: `parent${suffix}`, queueName: name, data: { item },
		opts: { failParentOnFailure: true },
		children: [1, 2].map((i) => ({
			name: `child${i}${suffix}`, queueName: name, data: { item },
			opts: { failParentOnFailure: true },
		})),
	});
	await producer.query('BEGIN');
	const item = await insertItem(producer);
	const node = await addFlowWithBarrier(flows, producer, flow(item, ''));
	const token = barrierToken(node.job);
	assert.ok(token);
	assert.deepEqual(node.children.map((c) => barrierToken(c.job)), [token, token]);
	await producer.query('COMMIT');
	await until(async () => (await stateOf(queue, node.job.id)) === 'completed', 'the parent');
	const runs = await runsOf(db, name);
	assert.deepEqual(runs.map((r) => r.name).sort(), ['child1', 'child2', 'parent']);
	assert.equal(runs.at(-1).name, 'parent');
	assert.ok(runs.every((r) => r.visible));

	await producer.query('BEGIN');
	const lost = await addFlowWithBarrier(flows, producer, [flow(await insertItem(producer), 'x')]);
	await producer.query('ROLLBACK');
	await until(async () => (await stateOf(queue, lost[0].job.id)) === 'failed', 'the parent to fail');
	for (const c of lost[0].children)
		assert.equal(await stateOf(queue, c.job.id), 'failed');
	assert.equal((await runsOf(db, name)).length, 3, 'nothing of the rolled-back flow ran');
	// The worker's 'failed' handler records a failure after the state is
	// final: wait for the row rather than read it once.
	await until(async () => (await failuresOf(db, name)).some((r) => r.err_kind === 'TransactionAbortedError'),
		'the failed handler of the rolled-back flow');
});

test('1,000 jobs from one transaction all run exactly once after COMMIT', async () => {
	const { name, queue } = await setup('thousand', { concurrency: 20, poolMax: 4 });
	await producer.query('BEGIN');
	const item = await insertItem(producer);
	const ids = [];
	for (let i = 0; i < 1000; i++)
		ids.push((await addWithBarrier(queue, producer, 'many', { item, i })).id);
	assert.equal(new Set(ids).size, 1000);
	assert.deepEqual(await runsOf(db, name), []);
	await producer.query('COMMIT');
	await until(async () => (await queue.getJobCounts('completed')).completed === 1000,
		'1000 completions', 120000);
	const r = await db.query(
		'SELECT count(*)::int AS n, count(DISTINCT job_id)::int AS d, bool_and(visible) AS v ' +
		'FROM node_runs WHERE queue = $1', [name]);
	assert.deepEqual(r.rows[0], { n: 1000, d: 1000, v: true });
});

test('through PgBouncer in transaction pooling mode', { skip: !bouncerPort && 'no PgBouncer' }, async () => {
	const { name, queue } = await setup('bouncer',
		{ pgHost: '127.0.0.1', pgPort: bouncerPort, pgDatabase: 'txb_node', poolMax: 8 });
	const bp = new pg.Pool({ host: '127.0.0.1', port: bouncerPort, database: 'txb_node', max: 6 });
	cleanups.push(() => bp.end());
	const expect = new Map();
	await Promise.all(Array.from({ length: 12 }, async (_, i) => {
		const c = await bp.connect();
		try {
			await c.query('BEGIN');
			const item = await insertItem(c);
			const job = await addWithBarrier(queue, c, `j${i}`, { item });
			assert.ok(barrierToken(job));
			await c.query(i % 3 === 0 ? 'ROLLBACK' : 'COMMIT');
			expect.set(job.id, i % 3 === 0 ? 'failed' : 'completed');
		} finally {
			c.release();
		}
	}));
	for (const [id, state] of expect)
		await until(async () => (await stateOf(queue, id)) === state, `job ${id} ${state}`);
	const runs = await runsOf(db, name);
	assert.equal(runs.length, 8);
	assert.ok(runs.every((r) => r.visible));
	// The failed handler writes its row after the state is final.
	const aborted = async () => (await failuresOf(db, name)).filter((f) => f.err_kind === 'TransactionAbortedError');
	await until(async () => (await aborted()).length >= 4, 'the failed handler of the 4 rolled-back jobs');
	assert.equal((await aborted()).length, 4);
	await until(async () => (await barrierWaiters(db)) === 0, 'no backend left waiting');
});
