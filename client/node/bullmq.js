// tx-barrier/bullmq: BullMQ jobs that run only after the PostgreSQL
// transaction that added them commits.
//
// BullMQ's queue lives in Redis, so adding a job cannot be part of a
// PostgreSQL transaction.  Here the producer takes a barrier token in its
// transaction and adds the job at once, with the token in the job's options
// (not in its data); the worker's processor, wrapped by withBarrier(), waits
// for the token's transaction on a pooled connection before the real
// processor runs: committed -> run; aborted -> the job fails without
// retries (TransactionAbortedError, an UnrecoverableError by class and by
// name, whatever copy of bullmq the worker uses); still open after
// the timeout -> the job goes back to BullMQ's delayed set, so neither a
// worker slot nor a database connection is held meanwhile.  These are the
// semantics of the Celery adapter (client/python/tx_barrier/celery.py).

import { DelayedError, UnrecoverableError } from 'bullmq';

import {
	ABORTED, BarrierArgumentError, BarrierExtensionMissingError, BarrierTimeoutError,
	BarrierTokenError, BarrierWaiterUnavailableError, COMMITTED, IN_PROGRESS, enqueue,
	inTransaction, normalizeToken, wait,
} from './index.js';

/** Job option carrying the barrier token (an xid8 as a decimal string). */
export const TOKEN_OPTION = 'txBarrierToken';
/** Field of the job's Redis hash counting the barrier's delays. */
export const WAITS_FIELD = 'txBarrierWaits';

// BullMQ decides "no retry" by `err instanceof UnrecoverableError ||
// err.name == 'UnrecoverableError'`.  The instanceof test only holds for the
// copy of bullmq this module resolves, which is not the application's when
// a project has two copies (a linked package with node_modules of its own,
// nested versions).  So the errors below are UnrecoverableErrors of our copy
// *and* carry name 'UnrecoverableError', which every copy recognises: no
// retries, whatever `attempts` says and however many copies there are.
// Their class (instanceof, constructor.name, util.inspect) and `kind` say
// what happened.
const UNRECOVERABLE = 'UnrecoverableError';

/**
 * The transaction that added the job rolled back (or the savepoint it was
 * added in did): the processor was not run and the job failed without
 * retries.  `name` is 'UnrecoverableError' (what BullMQ tests),
 * `kind` is 'TransactionAbortedError'.
 */
export class TransactionAbortedError extends UnrecoverableError {
	constructor(message, token) {
		super(message);
		this.name = UNRECOVERABLE;
		this.kind = 'TransactionAbortedError';
		this.token = token;
	}
}

/**
 * The job's transaction was still open after maxWaits delays (or the
 * barrier cannot be checked at all: a token the server does not know, no
 * extension): the job failed without retries.  `cause` is the underlying
 * error, if any, and `sqlstate` (alias `code`) its SQLSTATE.  `name` is
 * 'UnrecoverableError', `kind` is 'BarrierJobError'.
 */
export class BarrierJobError extends UnrecoverableError {
	constructor(message, token, cause) {
		super(message);
		this.name = UNRECOVERABLE;
		this.kind = 'BarrierJobError';
		this.token = token;
		if (cause !== undefined) {
			this.cause = cause;
			this.sqlstate = cause.sqlstate;
		}
	}

	/** Alias of sqlstate, as node-postgres names it. */
	get code() {
		return this.sqlstate;
	}
}

/** Returns the barrier token a job carries, or undefined. */
export function barrierToken(job) {
	const token = job?.opts?.[TOKEN_OPTION];
	return token === undefined || token === null ? undefined : String(token);
}

async function tokenFor(client) {
	if (!client || typeof client.query !== 'function')
		throw new BarrierArgumentError('a pg Client (inside BEGIN ... COMMIT) is required');
	return inTransaction(client) ? enqueue(client) : undefined;
}

function withToken(opts, token) {
	if (token === undefined)
		return opts;
	return { ...opts, [TOKEN_OPTION]: token };
}

/**
 * Adds a job that runs only once the transaction open on `client` commits.
 * Takes a token on `client` and calls queue.add() at once, before COMMIT.
 * Outside a transaction (or on a Pool) it is a plain queue.add().
 */
export async function addWithBarrier(queue, client, name, data, opts) {
	const token = await tokenFor(client);
	return queue.add(name, data, withToken(opts ?? {}, token));
}

/**
 * queue.addBulk() with one token, taken on `client`, for every job.
 * `jobs` is the array queue.addBulk() takes ({ name, data, opts }).
 */
export async function addBulkWithBarrier(queue, client, jobs) {
	const token = await tokenFor(client);
	return queue.addBulk(jobs.map((j) => ({ ...j, opts: withToken(j.opts ?? {}, token) })));
}

function flowWithToken(node, token) {
	return {
		...node,
		opts: withToken(node.opts ?? {}, token),
		children: node.children?.map((c) => flowWithToken(c, token)),
	};
}

/**
 * flowProducer.add(flow, opts) where the parent and every child wait for
 * one token taken on `client`.  An array of flows goes to
 * flowProducer.addBulk(), all on the same token.
 */
export async function addFlowWithBarrier(flowProducer, client, flow, opts) {
	const token = await tokenFor(client);
	if (Array.isArray(flow))
		return flowProducer.addBulk(flow.map((f) => flowWithToken(f, token)));
	return flowProducer.add(flowWithToken(flow, token), opts);
}

// The Redis client of the queue a job was fetched from (BullMQ's Redis
// backend), or undefined with another backend.
function redisOf(job) {
	return job.queue?.backend?.client ?? job.queue?.client;
}

/** How many times the barrier has put the job back delayed so far. */
export async function barrierWaits(job) {
	const redis = await redisOf(job);
	if (!redis)
		return undefined;
	const v = await redis.hget(job.queue.toKey(job.id), WAITS_FIELD);
	return v === null ? 0 : Number(v);
}

// Errors that say the barrier can never be checked: retrying cannot help.
function isPermanent(err) {
	return err instanceof BarrierTokenError || err instanceof BarrierExtensionMissingError ||
		err instanceof BarrierArgumentError || err instanceof BarrierWaiterUnavailableError;
}

// A Waiter's wait, answering 'in progress' on timeout as wait() does.
async function waitOnWaiter(waiter, token, timeoutMs, signal) {
	try {
		return await waiter.wait(token, { timeoutMs, signal });
	} catch (err) {
		if (err instanceof BarrierTimeoutError)
			return IN_PROGRESS;
		throw err;
	}
}

/**
 * Wraps a BullMQ processor so that a job carrying a barrier token runs only
 * after the token's transaction committed.  Options:
 *
 *   pool          pg.Pool the worker waits on; one connection is held per
 *                 waiting job, for at most timeoutMs.
 *   waiter        instead of pool, a Waiter (index.js): one connection for
 *                 all the worker's waiting jobs, however high its
 *                 concurrency (needs tx_barrier in shared_preload_libraries).
 *   timeoutMs     how long one wait may block (default 10000; null: no
 *                 limit, only for dedicated workers).
 *   delayMs       delay of the job put back when the transaction is still
 *                 open after timeoutMs (default 1000).
 *   errorDelayMs  delay when the database could not be reached (default 1000).
 *   maxWaits      how many delays before the job fails with BarrierJobError
 *                 (default null: until the transaction ends).  Delays do
 *                 not count as BullMQ attempts.
 *
 * Jobs without a token run at once.
 */
export function withBarrier(processor, options = {}) {
	const {
		pool, waiter, timeoutMs = 10000, delayMs = 1000, errorDelayMs = 1000, maxWaits = null,
	} = options;
	if (typeof processor !== 'function')
		throw new TypeError('withBarrier: processor must be a function');
	if (waiter !== undefined && waiter !== null) {
		if (pool !== undefined && pool !== null)
			throw new TypeError('withBarrier: options.pool and options.waiter exclude each other');
		if (typeof waiter.wait !== 'function')
			throw new TypeError('withBarrier: options.waiter must be a Waiter');
	} else if (!pool || typeof pool.query !== 'function') {
		throw new TypeError('withBarrier: options.pool must be a pg Pool (or options.waiter a Waiter)');
	}

	async function putBack(job, jobToken, token, ms, reason) {
		const redis = await redisOf(job);
		let waits;
		if (redis)
			waits = await redis.hincrby(job.queue.toKey(job.id), WAITS_FIELD, 1);
		if (maxWaits !== null && waits !== undefined && waits > maxWaits)
			throw new BarrierJobError(
				`gave up on job ${job.id} after ${maxWaits} barrier delays: ${reason.message ?? reason}`,
				token, reason instanceof Error ? reason : undefined);
		await job.moveToDelayed(Date.now() + ms, jobToken);
		throw new DelayedError();
	}

	return async function barrierProcessor(job, jobToken, signal) {
		const token = barrierToken(job);
		if (token === undefined)
			return processor(job, jobToken, signal);
		let state;
		try {
			state = waiter
				? await waitOnWaiter(waiter, normalizeToken(token), timeoutMs, signal)
				: await wait(pool, normalizeToken(token), { timeoutMs, signal });
		} catch (err) {
			if (signal?.aborted)
				throw err;
			if (isPermanent(err))
				throw new BarrierJobError(
					`cannot check the barrier of job ${job.id}: ${err.message}`, token, err);
			// Connection trouble, a cancelled statement: try again later.
			await putBack(job, jobToken, token, errorDelayMs, err);
		}
		if (state === COMMITTED)
			return processor(job, jobToken, signal);
		if (state === ABORTED)
			throw new TransactionAbortedError(
				`the transaction that added job ${job.name}[${job.id}] was rolled back ` +
				`(barrier token ${token})`, token);
		if (state === IN_PROGRESS)
			await putBack(job, jobToken, token, delayMs,
				new Error(`the transaction of barrier token ${token} is still in progress after ${timeoutMs} ms`));
		throw new BarrierJobError(`unexpected barrier state ${state} for token ${token}`, token);
	};
}

export { COMMITTED, ABORTED, IN_PROGRESS };
