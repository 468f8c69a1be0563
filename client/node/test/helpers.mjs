// Shared plumbing of the tests: connections to the layer's PostgreSQL (PG*
// environment), Redis (TXB_REDIS_URL) and PgBouncer (TXB_PGBOUNCER_PORT),
// worker and producer child processes, and awaiting conditions.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Queue } from 'bullmq';

const here = fileURLToPath(new URL('.', import.meta.url));
export const connection = { url: process.env.TXB_REDIS_URL, maxRetriesPerRequest: null };
export const bouncerPort = process.env.TXB_PGBOUNCER_PORT
	? Number(process.env.TXB_PGBOUNCER_PORT) : undefined;

export function uniqueName(prefix) {
	return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function newClient(config) {
	const c = new pg.Client(config);
	await c.connect();
	return c;
}

// Polls fn every 20 ms until it returns a truthy value; fails after ms, a
// guard against a hang that no loaded machine reaches.
export async function until(fn, what, ms = 120000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const v = await fn();
		if (v)
			return v;
		if (Date.now() > deadline)
			throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 20));
	}
}

let nextItem = Math.floor(Math.random() * 1e6) * 1000;
export function itemId() {
	return ++nextItem;
}

function readLine(child, what) {
	return new Promise((resolve, reject) => {
		let buf = '';
		const onData = (d) => {
			buf += d;
			const nl = buf.indexOf('\n');
			if (nl >= 0) {
				child.stdout.off('data', onData);
				resolve(buf.slice(0, nl));
			}
		};
		child.stdout.on('data', onData);
		child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before answering`)));
	});
}

/**
 * Starts a worker process on queue; resolves once it listens.  `script`
 * runs another copy of worker.mjs (in an application directory of its own).
 */
export async function startWorker(queue, opts = {}, script = `${here}/worker.mjs`) {
	const child = spawn(process.execPath, [script, queue, JSON.stringify(opts)],
		{ stdio: ['ignore', 'pipe', 'inherit'] });
	const line = await readLine(child, 'worker');
	if (line !== 'ready')
		throw new Error(`worker said ${line}`);
	return {
		child,
		async stop() {
			if (child.exitCode !== null)
				return;
			child.kill('SIGTERM');
			const t = setTimeout(() => child.kill('SIGKILL'), 10000);
			await once(child, 'exit');
			clearTimeout(t);
		},
	};
}

/** Starts producer.mjs (or another copy of it); resolves with the child and the line it printed. */
export async function startProducer(queue, id, mode, script = `${here}/producer.mjs`) {
	const child = spawn(process.execPath, [script, queue, String(id), mode],
		{ stdio: ['ignore', 'pipe', 'inherit'] });
	const line = await readLine(child, 'producer');
	return { child, line };
}

export async function openQueue(name) {
	const q = new Queue(name, { connection });
	await q.waitUntilReady();
	return q;
}

export async function runsOf(db, queue) {
	const r = await db.query(
		'SELECT job_id, name, visible, waits FROM node_runs WHERE queue = $1 ORDER BY id', [queue]);
	return r.rows;
}

export async function failuresOf(db, queue) {
	const r = await db.query(
		'SELECT job_id, err_name, err_kind, message, attempts_made FROM node_failures ' +
		'WHERE queue = $1 ' +
		'ORDER BY id', [queue]);
	return r.rows;
}

/** Backends of this database blocked in barrier_wait / barrier_wait_all. */
export async function barrierWaiters(db) {
	const r = await db.query(
		"SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() " +
		"AND pid <> pg_backend_pid() AND query LIKE '%barrier_wait%' AND state = 'active' " +
		// Asleep on the producer's xid lock: a cancelled wait leaves it before
		// the error reaches the client (the 'active' state lasts a moment more).
		"AND wait_event_type = 'Lock' AND wait_event = 'transactionid'");
	return r.rows[0].n;
}
