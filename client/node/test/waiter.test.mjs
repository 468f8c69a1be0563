// Waiter (one connection, many waits) against real servers: a cluster with
// tx_barrier in shared_preload_libraries (TXB_NODE_PRELOADED_PORT, started
// by the layer) for the shared waits; the layer's shared server (no
// preloading) and a database without the extension for the errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
	Waiter, enqueue, BarrierTimeoutError, BarrierTokenError, BarrierWaiterUnavailableError,
	BarrierError, COMMITTED, ABORTED,
} from 'tx-barrier';
import { addWithBarrier, withBarrier } from 'tx-barrier/bullmq';
import {
	newClient, until, uniqueName, openQueue, startWorker, runsOf, failuresOf, itemId,
} from './helpers.mjs';

const preloaded = {
	host: '127.0.0.1',
	port: Number(process.env.TXB_NODE_PRELOADED_PORT),
	database: process.env.TXB_NODE_PRELOADED_DB ?? 'txb_node_waiter',
	user: 'postgres',
};
const APP = 'txb_node_waiter';
const waiterConfig = { ...preloaded, application_name: APP };
const GUARD = 120000; // a hang guard, not a speed

let observer;
const producers = [];

before(async () => {
	observer = await newClient({ ...preloaded, application_name: 'txb_node_observer' });
});

after(async () => {
	await Promise.all(producers.map((p) => p.end().catch(() => {})));
	await observer.end();
});

async function producer() {
	const p = await newClient({ ...preloaded, application_name: 'txb_node_producer' });
	producers.push(p);
	await p.query('BEGIN');
	return p;
}

async function registered(waiter) {
	const pid = waiter.backendPid;
	if (pid === undefined)
		return new Set();
	const r = await observer.query('SELECT token::text AS t FROM barrier_waiters() WHERE pid = $1', [pid]);
	return new Set(r.rows.map((x) => x.t));
}

async function untilRegistered(waiter, tokens) {
	await until(async () => {
		const got = await registered(waiter);
		return tokens.every((t) => got.has(t));
	}, `the waiter's backend to sleep on ${tokens.length} tokens`);
}

async function backends(app = APP) {
	const r = await observer.query(
		'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app]);
	return r.rows[0].n;
}

// A backend that was told to go (close(), pg_terminate_backend) stays in
// pg_stat_activity until it has exited: wait for the count.
async function untilBackends(n, app = APP) {
	await until(async () => (await backends(app)) === n, `${n} backends named ${app}`);
}

// Settles a promise into { state } or { error }, so that a pending wait can
// be looked at without awaiting it.
function track(promise) {
	const t = { done: false };
	t.promise = promise.then((state) => Object.assign(t, { done: true, state }),
		(error) => Object.assign(t, { done: true, error }));
	return t;
}

test('500 tokens over one connection: one backend answers them all', async () => {
	const waiter = new Waiter(waiterConfig);
	const expected = new Map();
	const ps = [];
	for (let i = 0; i < 10; i++) {
		const p = await producer();
		ps.push(p);
		const outcome = i < 7 ? COMMITTED : ABORTED;
		expected.set(await enqueue(p), outcome);
		for (let j = 0; j < 49; j++) {
			await p.query(`SAVEPOINT s${j}`);
			expected.set(await enqueue(p), outcome);
			await p.query(`RELEASE SAVEPOINT s${j}`);
		}
	}
	assert.equal(expected.size, 500);
	const waits = [...expected.keys()].map((t) => waiter.wait(t, { timeoutMs: GUARD }).then((s) => [t, s]));
	await untilRegistered(waiter, [...expected.keys()]);
	assert.equal(waiter.pending, 500);
	assert.equal(await backends(), 1);
	// No other backend sleeps on any token.  (The waiter's own may be
	// between two statements: a cancel that arrives late makes it issue the
	// same tokens again.)
	const others = await observer.query('SELECT count(*)::int AS n FROM barrier_waiters() WHERE pid <> $1',
		[waiter.backendPid]);
	assert.equal(others.rows[0].n, 0);
	for (const [i, p] of ps.entries())
		await p.query(i < 7 ? 'COMMIT' : 'ROLLBACK');
	assert.deepEqual(new Map(await Promise.all(waits)), expected);
	assert.equal(waiter.pending, 0);
	assert.equal(await backends(), 1);
	await waiter.close();
	await untilBackends(0);
});

test('a rolled-back savepoint wakes its waiter; the top level later', async () => {
	const waiter = new Waiter(waiterConfig);
	const p = await producer();
	const top = await enqueue(p);
	await p.query('SAVEPOINT s');
	const sub = await enqueue(p);
	const a = track(waiter.wait(top));
	const b = waiter.wait(sub);
	await untilRegistered(waiter, [top, sub]);
	await p.query('ROLLBACK TO SAVEPOINT s');
	assert.equal(await b, ABORTED);
	assert.equal(a.done, false);
	await p.query('COMMIT');
	await a.promise;
	assert.equal(a.state, COMMITTED);
	await waiter.close();
});

test('prepared transactions: answered at COMMIT PREPARED / ROLLBACK PREPARED', async () => {
	const waiter = new Waiter(waiterConfig);
	const tokens = {};
	for (const gid of ['txb_node_2pc_c', 'txb_node_2pc_a']) {
		const p = await producer();
		tokens[gid] = await enqueue(p);
		await p.query(`PREPARE TRANSACTION '${gid}'`);
	}
	const c = track(waiter.wait(tokens.txb_node_2pc_c));
	const a = track(waiter.wait(tokens.txb_node_2pc_a));
	await untilRegistered(waiter, Object.values(tokens));
	await observer.query("COMMIT PREPARED 'txb_node_2pc_c'");
	await c.promise;
	assert.equal(c.state, COMMITTED);
	assert.equal(a.done, false);
	await observer.query("ROLLBACK PREPARED 'txb_node_2pc_a'");
	await a.promise;
	assert.equal(a.state, ABORTED);
	await waiter.close();
});

test('timeout and AbortSignal withdraw the wait; the others are answered', async () => {
	const waiter = new Waiter(waiterConfig);
	const p = await producer();
	const token = await enqueue(p);
	await assert.rejects(waiter.wait(token, { timeoutMs: 200 }), (err) => {
		assert.ok(err instanceof BarrierTimeoutError);
		assert.ok(err instanceof BarrierError);
		assert.match(err.message, new RegExp(token));
		return true;
	});
	assert.equal(waiter.pending, 0);
	const other = await producer();
	const otherToken = await enqueue(other);
	const kept = track(waiter.wait(otherToken, { timeoutMs: GUARD }));
	const ac = new AbortController();
	const aborted = waiter.wait(token, { signal: ac.signal });
	await untilRegistered(waiter, [token, otherToken]);
	const reason = new Error('job cancelled');
	ac.abort(reason);
	await assert.rejects(aborted, (err) => err === reason);
	assert.equal(waiter.pending, 1);
	// An already aborted signal rejects at once.
	await assert.rejects(waiter.wait(token, { signal: ac.signal }), (err) => err === reason);
	await other.query('COMMIT');
	await kept.promise;
	assert.equal(kept.state, COMMITTED);
	await p.query('COMMIT');
	assert.equal(await waiter.wait(token, { timeoutMs: GUARD }), COMMITTED);
	await assert.rejects(waiter.wait(token, { timeoutMs: -1 }), /non-negative/);
	await waiter.close();
});

test('a token added while the waiter sleeps is answered without the others ending', async () => {
	const waiter = new Waiter(waiterConfig);
	const pa = await producer();
	const pb = await producer();
	const ta = await enqueue(pa);
	const a = track(waiter.wait(ta, { timeoutMs: GUARD }));
	await untilRegistered(waiter, [ta]);
	const tb = await enqueue(pb);
	const b = waiter.wait(tb, { timeoutMs: GUARD });
	await untilRegistered(waiter, [ta, tb]);
	await pb.query('ROLLBACK');
	assert.equal(await b, ABORTED);
	// An ended token is answered too, while A still sleeps.
	assert.equal(await waiter.wait(tb, { timeoutMs: GUARD }), ABORTED);
	assert.equal(a.done, false);
	assert.ok(waiter.cancels >= 1);
	await pa.query('COMMIT');
	await a.promise;
	assert.equal(a.state, COMMITTED);
	await waiter.close();
});

test('pg_terminate_backend while waits are pending: answered after the reconnect', async () => {
	// Connecting again is held until two of the three transactions have
	// ended; the third ends after: all three answered, on a new backend.
	let made = 0;
	let attempted;
	const attempt = new Promise((r) => { attempted = r; });
	let openGate;
	const gate = new Promise((r) => { openGate = r; });
	const waiter = new Waiter(async () => {
		if (++made > 1) {
			attempted();
			await gate;
		}
		return new pg.Client(waiterConfig);
	}, { reconnectDelayMs: 10 });
	const ps = [await producer(), await producer(), await producer()];
	const tokens = [];
	for (const p of ps)
		tokens.push(await enqueue(p));
	const waits = tokens.map((t) => track(waiter.wait(t, { timeoutMs: GUARD })));
	await untilRegistered(waiter, tokens);
	const old = waiter.backendPid;
	await observer.query('SELECT pg_terminate_backend($1)', [old]);
	await attempt;
	await ps[0].query('COMMIT');
	await ps[1].query('ROLLBACK');
	openGate();
	await waits[0].promise;
	await waits[1].promise;
	assert.deepEqual([waits[0].state, waits[1].state], [COMMITTED, ABORTED]);
	await untilRegistered(waiter, [tokens[2]]);
	assert.notEqual(waiter.backendPid, old);
	assert.equal(waiter.reconnects, 1);
	assert.equal(waits[2].done, false);
	await ps[2].query('COMMIT');
	await waits[2].promise;
	assert.equal(waits[2].state, COMMITTED);
	await untilBackends(1);
	await waiter.close();
});

test('a Client given to the Waiter: used first, then replaced after a loss', async () => {
	const client = new pg.Client(waiterConfig);
	await client.connect();
	const first = client.processID;
	const waiter = new Waiter(client, { reconnectDelayMs: 10 });
	const p = await producer();
	const token = await enqueue(p);
	const w = track(waiter.wait(token, { timeoutMs: GUARD }));
	await untilRegistered(waiter, [token]);
	assert.equal(waiter.backendPid, first);
	await observer.query('SELECT pg_terminate_backend($1)', [first]);
	await until(async () => waiter.backendPid !== undefined && waiter.backendPid !== first &&
		(await registered(waiter)).has(token), 'the waiter to sleep again on a new backend');
	await p.query('COMMIT');
	await w.promise;
	assert.equal(w.state, COMMITTED);
	await waiter.close();
});

test('a bad token fails its own wait only', async () => {
	const waiter = new Waiter(waiterConfig);
	const p = await producer();
	const good = await enqueue(p);
	const g = track(waiter.wait(good, { timeoutMs: GUARD }));
	await untilRegistered(waiter, [good]);
	await assert.rejects(waiter.wait(1n << 40n, { timeoutMs: GUARD }), (err) => {
		assert.ok(err instanceof BarrierTokenError);
		assert.equal(err.sqlstate, '22023');
		return true;
	});
	assert.equal(g.done, false);
	await p.query('COMMIT');
	await g.promise;
	assert.equal(g.state, COMMITTED);
	await waiter.close();
});

test('close() rejects the pending waits and ends the connection', async () => {
	const waiter = new Waiter(waiterConfig);
	const p = await producer();
	const token = await enqueue(p);
	const w = waiter.wait(token);
	await untilRegistered(waiter, [token]);
	const closing = waiter.close();
	await assert.rejects(w, (err) => err instanceof BarrierError && /closed/.test(err.message));
	await closing;
	await untilBackends(0);
	await assert.rejects(waiter.wait(token), /closed/);
	await p.query('ROLLBACK');
});

test('without preloading: BarrierWaiterUnavailableError (55000); ended tokens answered', async () => {
	// The layer's shared server does not preload tx_barrier.
	const waiter = new Waiter({});
	const p = await newClient();
	producers.push(p);
	await p.query('BEGIN');
	const ended = await enqueue(p);
	await p.query('COMMIT');
	await p.query('BEGIN');
	const running = await enqueue(p);
	assert.equal(await waiter.wait(ended, { timeoutMs: GUARD }), COMMITTED);
	await assert.rejects(waiter.wait(running, { timeoutMs: GUARD }), (err) => {
		assert.ok(err instanceof BarrierWaiterUnavailableError, err.stack);
		assert.equal(err.sqlstate, '55000');
		assert.match(err.message, /shared_preload_libraries/);
		return true;
	});
	await p.query('ROLLBACK');
	await waiter.close();
});

test('without barrier_wait_any(): BarrierWaiterUnavailableError (42883)', async () => {
	const waiter = new Waiter({ database: process.env.TXB_NODE_DB_NOEXT });
	await assert.rejects(waiter.wait(1, { timeoutMs: GUARD }), (err) => {
		assert.ok(err instanceof BarrierWaiterUnavailableError, err.stack);
		assert.equal(err.sqlstate, '42883');
		return true;
	});
	await waiter.close();
});

test('withBarrier takes a pool or a waiter, not both', async () => {
	const waiter = new Waiter(waiterConfig);
	const pool = new pg.Pool(waiterConfig);
	assert.equal(typeof withBarrier(async () => 1, { waiter }), 'function');
	assert.throws(() => withBarrier(async () => 1, { waiter, pool }), /exclude each other/);
	assert.throws(() => withBarrier(async () => 1, { waiter: {} }), /must be a Waiter/);
	assert.throws(() => withBarrier(async () => 1, {}), /must be a pg Pool/);
	await pool.end();
	await waiter.close();
});

test('a BullMQ worker at concurrency 20 waits for all its jobs on one backend', async () => {
	// 20 jobs, each added in a savepoint of its own (20 tokens); the one in
	// the rolled-back savepoint fails with TransactionAbortedError, the
	// others run after COMMIT and see their rows.
	const name = uniqueName('waiter');
	const queue = await openQueue(name);
	const worker = await startWorker(name, {
		concurrency: 20, timeoutMs: GUARD, waiter: { host: preloaded.host, port: preloaded.port, database: preloaded.database },
	});
	try {
		const p = await producer();
		const tokens = [];
		const jobs = [];
		let lost;
		for (let i = 0; i < 20; i++) {
			await p.query(`SAVEPOINT j${i}`);
			const item = itemId();
			await p.query('INSERT INTO node_items (id) VALUES ($1)', [item]);
			const job = await addWithBarrier(queue, p, 'work', { item });
			tokens.push(job.opts.txBarrierToken);
			if (i === 7) {
				lost = job;
				await p.query(`ROLLBACK TO SAVEPOINT j${i}`);
			} else {
				jobs.push(job);
				await p.query(`RELEASE SAVEPOINT j${i}`);
			}
		}
		// The 19 open tokens, all on the worker's one waiting backend.
		await until(async () => {
			const r = await observer.query(
				'SELECT count(*)::int AS n, count(DISTINCT w.pid)::int AS pids, ' +
				"bool_and(a.application_name = 'txb_node_bullmq_waiter') AS ours " +
				'FROM barrier_waiters() w JOIN pg_stat_activity a USING (pid)');
			return r.rows[0].n === 19 && r.rows[0].pids === 1 && r.rows[0].ours;
		}, 'the worker to wait for 19 jobs on one backend');
		assert.equal(await backends('txb_node_bullmq_waiter'), 1);
		const failed = await until(async () => {
			const f = await failuresOf(observer, name);
			return f.length === 1 && f;
		}, 'the rolled-back job to fail');
		assert.equal(failed[0].job_id, lost.id);
		assert.equal(failed[0].err_kind, 'TransactionAbortedError');
		await p.query('COMMIT');
		const runs = await until(async () => {
			const r = await runsOf(observer, name);
			return r.length === 19 && r;
		}, 'the 19 committed jobs to run');
		assert.deepEqual(runs.map((r) => r.job_id).sort(), jobs.map((j) => j.id).sort());
		assert.ok(runs.every((r) => r.visible), 'every job saw its committed row');
		assert.ok(new Set(tokens).size === 20);
	} finally {
		await worker.stop();
		await queue.obliterate({ force: true });
		await queue.close();
	}
});
