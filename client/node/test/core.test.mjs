// The core API (tx-barrier) against a real PostgreSQL with the extension:
// tokens, states, waits with timeouts and AbortSignal, typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
	enqueue, status, wait, waitAll, normalizeToken, inTransaction,
	BarrierError, BarrierTokenError, BarrierExtensionMissingError, BarrierArgumentError,
	COMMITTED, ABORTED, IN_PROGRESS,
} from 'tx-barrier';
import { newClient, until, barrierWaiters, bouncerPort } from './helpers.mjs';

let producer, observer, pool;

before(async () => {
	producer = await newClient();
	observer = await newClient();
	pool = new pg.Pool({ max: 2 });
});

after(async () => {
	await producer.end();
	await observer.end();
	await pool.end();
});

test('a committed token: in progress inside, committed after COMMIT', async () => {
	await producer.query('BEGIN');
	assert.equal(inTransaction(producer), true);
	const token = await enqueue(producer);
	assert.match(token, /^[0-9]+$/);
	assert.equal(await status(observer, token), IN_PROGRESS);
	const waiting = wait(pool, token);
	await until(async () => (await barrierWaiters(observer)) === 1, 'the waiter to block');
	await producer.query('COMMIT');
	assert.equal(inTransaction(producer), false);
	assert.equal(await waiting, COMMITTED);
	assert.equal(await status(observer, BigInt(token)), COMMITTED);
});

test('a rolled-back token reads aborted', async () => {
	await producer.query('BEGIN');
	const token = await enqueue(producer);
	const waiting = wait(observer, token, { timeoutMs: 60000 });
	await producer.query('ROLLBACK');
	assert.equal(await waiting, ABORTED);
});

test('a token of a rolled-back savepoint reads aborted when the top level commits', async () => {
	await producer.query('BEGIN');
	const outer = await enqueue(producer);
	await producer.query('SAVEPOINT s');
	const inner = await enqueue(producer);
	assert.notEqual(inner, outer);
	await producer.query('ROLLBACK TO SAVEPOINT s');
	await producer.query('COMMIT');
	const states = await waitAll(pool, [outer, inner]);
	assert.deepEqual([...states.entries()].sort(), [[inner, ABORTED], [outer, COMMITTED]].sort());
});

test('a wait that times out answers in progress', async () => {
	await producer.query('BEGIN');
	const token = await enqueue(producer);
	const t0 = Date.now();
	assert.equal(await wait(observer, token, { timeoutMs: 200 }), IN_PROGRESS);
	assert.ok(Date.now() - t0 >= 190, 'waited the timeout');
	assert.equal(await wait(observer, token, { timeoutMs: 0 }), IN_PROGRESS);
	const all = await waitAll(observer, [token], { timeoutMs: 50 });
	assert.equal(all.get(token), IN_PROGRESS);
	await producer.query('ROLLBACK');
});

test('AbortSignal cancels the server-side wait (Client)', async () => {
	await producer.query('BEGIN');
	const token = await enqueue(producer);
	const ac = new AbortController();
	const waiter = await newClient();
	const waiting = wait(waiter, token, { signal: ac.signal });
	await until(async () => (await barrierWaiters(observer)) === 1, 'the waiter to block');
	ac.abort(new Error('stop waiting'));
	await assert.rejects(waiting, /stop waiting/);
	// The promise settles only once the server has stopped waiting.
	assert.equal(await barrierWaiters(observer), 0);
	// The connection is usable again.
	assert.equal((await waiter.query('SELECT 1 AS one')).rows[0].one, 1);
	await waiter.end();
	await producer.query('ROLLBACK');
});

test('AbortSignal cancels waitAll on a Pool and the pool stays usable', async () => {
	await producer.query('BEGIN');
	const token = await enqueue(producer);
	const ac = new AbortController();
	const waiting = waitAll(pool, [token], { signal: ac.signal });
	await until(async () => (await barrierWaiters(observer)) === 1, 'the waiter to block');
	ac.abort();
	await assert.rejects(waiting, { name: 'AbortError' });
	assert.equal(await barrierWaiters(observer), 0);
	await producer.query('COMMIT');
	assert.equal(await wait(pool, token), COMMITTED);
	// An already aborted signal never reaches the server.
	await assert.rejects(wait(pool, token, { signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('AbortSignal cancels a wait made through PgBouncer in transaction mode',
	{ skip: !bouncerPort && 'no PgBouncer' }, async () => {
		const bp = new pg.Pool({ host: '127.0.0.1', port: bouncerPort, database: 'txb_node', max: 2 });
		try {
			await producer.query('BEGIN');
			const token = await enqueue(producer);
			const ac = new AbortController();
			const waiting = wait(bp, token, { signal: ac.signal });
			await until(async () => (await barrierWaiters(observer)) === 1, 'the waiter to block');
			ac.abort();
			await assert.rejects(waiting, { name: 'AbortError' });
			assert.equal(await barrierWaiters(observer), 0);
			await producer.query('COMMIT');
			assert.equal(await wait(bp, token, { timeoutMs: 5000 }), COMMITTED);
		} finally {
			await bp.end();
		}
	});

test('tokens: decimal strings and bigints in, strings out; bad ones rejected', async () => {
	assert.equal(normalizeToken(18446744073709551615n), '18446744073709551615');
	assert.equal(normalizeToken('42'), '42');
	assert.equal(normalizeToken(42), '42');
	for (const bad of ['18446744073709551616', '-1', '1e3', '', 1.5, -1n, null, {}])
		assert.throws(() => normalizeToken(bad), BarrierArgumentError, String(bad));
	await assert.rejects(wait(pool, '1', { timeoutMs: -1 }), BarrierArgumentError);
});

test('a token in the future is a BarrierTokenError with SQLSTATE 22023', async () => {
	const future = ((1n << 62n) + 5n).toString();
	for (const call of [() => status(pool, future), () => wait(pool, future, { timeoutMs: 10 }),
		() => waitAll(pool, [future])]) {
		await assert.rejects(call(), (err) => {
			assert.ok(err instanceof BarrierTokenError);
			assert.ok(err instanceof BarrierError);
			assert.equal(err.sqlstate, '22023');
			assert.match(err.message, /future/);
			return true;
		});
	}
});

test('a database without the extension gives BarrierExtensionMissingError', async () => {
	const other = await newClient({ database: process.env.TXB_NODE_DB_NOEXT });
	try {
		await assert.rejects(enqueue(other), (err) => {
			assert.ok(err instanceof BarrierExtensionMissingError);
			assert.equal(err.sqlstate, '42883');
			assert.match(err.message, /CREATE EXTENSION tx_barrier/);
			return true;
		});
		await assert.rejects(wait(other, '5', { timeoutMs: 0 }), BarrierExtensionMissingError);
	} finally {
		await other.end();
	}
});
