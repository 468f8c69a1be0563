// tx-barrier: transaction barriers for PostgreSQL, from Node.js.
//
// A producer takes a token inside the transaction that changes the data
// (enqueue), sends it along with an asynchronous job, and commits.  The
// consumer, before it touches the data, asks PostgreSQL to block until that
// transaction has ended (wait) and learns whether it committed or aborted.
// The work is done by the tx_barrier extension (CREATE EXTENSION tx_barrier);
// this module only calls its SQL functions on a node-postgres (`pg`) Client,
// PoolClient or Pool, and maps the server's errors to typed errors that
// carry the SQLSTATE.  The BullMQ integration lives in ./bullmq.js.

import net from 'node:net';

export const IN_PROGRESS = 'in progress';
export const COMMITTED = 'committed';
export const ABORTED = 'aborted';
export const STATES = Object.freeze([IN_PROGRESS, COMMITTED, ABORTED]);

// SQLSTATEs the extension raises for a token it cannot answer for.
const SQLSTATE_INVALID = '22023'; // a token in the future, a negative timeout
const SQLSTATE_TOO_OLD = '55000'; // older than the commit log still knows
// What a database without the extension answers.
const SQLSTATE_UNDEFINED_FUNCTION = '42883';
const SQLSTATE_UNDEFINED_OBJECT = '42704';
// A statement cancelled by a cancel request (our AbortSignal) or a timeout.
const SQLSTATE_QUERY_CANCELED = '57014';

const MAX_TOKEN = (1n << 64n) - 1n;
const CANCEL_RESEND_MS = 500;

/** Base class of the errors this package raises. */
export class BarrierError extends Error {
	constructor(message, options = {}) {
		super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
		this.name = this.constructor.name;
		/** The server's SQLSTATE, or undefined for errors of the client side. */
		this.sqlstate = options.sqlstate;
	}

	/** Alias of sqlstate, as node-postgres names it. */
	get code() {
		return this.sqlstate;
	}
}

/**
 * PostgreSQL cannot say what became of the token's transaction: it names a
 * transaction that does not exist (yet) on this server (22023: a token sent
 * to the wrong cluster, or a cluster restored from an older backup), or one
 * so old that the commit log no longer knows its outcome (55000).
 */
export class BarrierTokenError extends BarrierError {}

/** The database has no tx_barrier extension (CREATE EXTENSION tx_barrier). */
export class BarrierExtensionMissingError extends BarrierError {}

/** Any other error the server raised while taking or checking a token. */
export class BarrierDatabaseError extends BarrierError {}

/** A token that is not an unsigned 64-bit integer. */
export class BarrierArgumentError extends BarrierError {}

/**
 * Returns a token as the decimal string used on the wire.  Tokens are xid8
 * values, unsigned 64-bit integers: larger than Number.MAX_SAFE_INTEGER can
 * be, so they travel as strings that no JSON implementation rounds.
 */
export function normalizeToken(token) {
	let value;
	if (typeof token === 'bigint') {
		value = token;
	} else if (typeof token === 'number') {
		if (!Number.isSafeInteger(token))
			throw new BarrierArgumentError(`barrier token is not a safe integer: ${token}`);
		value = BigInt(token);
	} else if (typeof token === 'string' && /^[0-9]{1,20}$/.test(token)) {
		value = BigInt(token);
	} else {
		throw new BarrierArgumentError(`invalid barrier token: ${String(token)}`);
	}
	if (value < 0n || value > MAX_TOKEN)
		throw new BarrierArgumentError(`barrier token out of range: ${value}`);
	return value.toString();
}

function mapError(err) {
	const code = err && typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code)
		? err.code : undefined;
	if (code === undefined)
		return err;
	const opts = { sqlstate: code, cause: err };
	if (code === SQLSTATE_INVALID || code === SQLSTATE_TOO_OLD)
		return new BarrierTokenError(err.message, opts);
	if ((code === SQLSTATE_UNDEFINED_FUNCTION || code === SQLSTATE_UNDEFINED_OBJECT) &&
		/barrier_/.test(err.message))
		return new BarrierExtensionMissingError(
			`${err.message} (is the tx_barrier extension installed in this ` +
			'database and its schema on the search_path? CREATE EXTENSION tx_barrier)', opts);
	return new BarrierDatabaseError(err.message, opts);
}

function isPool(db) {
	// pg.Pool has connect() and counters; a Client/PoolClient has neither
	// totalCount nor idleCount.
	return db && typeof db.connect === 'function' && typeof db.totalCount === 'number';
}

async function query(db, text, values) {
	try {
		return await db.query(text, values);
	} catch (err) {
		throw mapError(err);
	}
}

/**
 * Tells whether a pg Client is inside a transaction block, so that a token
 * taken now belongs to a transaction the caller will commit or roll back.
 * A Pool never is.  Clients of node-postgres versions that do not report the
 * transaction status count as inside one (a token taken outside a
 * transaction names its own, already committed statement: harmless).
 */
export function inTransaction(db) {
	if (isPool(db))
		return false;
	if (typeof db.getTransactionStatus === 'function') {
		const status = db.getTransactionStatus();
		if (status === 'I')
			return false;
		if (status === 'T' || status === 'E')
			return true;
	}
	return true;
}

/**
 * Takes a barrier token in the client's current transaction and returns it
 * as a decimal string.  The token names the current (sub)transaction: if
 * the savepoint that took it is rolled back, it reads 'aborted' even when
 * the enclosing transaction commits.  Call it, and publish the job, before
 * COMMIT.
 */
export async function enqueue(client) {
	const res = await query(client, 'SELECT barrier_enqueue()::text AS token');
	return normalizeToken(res.rows[0].token);
}

/** Returns the state of the token's transaction, without waiting. */
export async function status(db, token) {
	const res = await query(db, 'SELECT barrier_status($1::xid8)::text AS state',
		[normalizeToken(token)]);
	return res.rows[0].state;
}

function checkTimeout(timeoutMs) {
	if (timeoutMs === undefined || timeoutMs === null)
		return null;
	if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)
		throw new BarrierArgumentError(`timeoutMs must be a non-negative number, not ${timeoutMs}`);
	return timeoutMs;
}

function abortError(signal) {
	if (signal.reason !== undefined)
		return signal.reason;
	const err = new Error('This operation was aborted');
	err.name = 'AbortError';
	return err;
}

// Runs one waiting statement on a Client (checked out of the pool if db is
// a Pool) so that an AbortSignal can cancel it server-side: the promise
// settles only once the server has stopped waiting.
async function cancellableQuery(db, text, values, signal) {
	if (signal?.aborted)
		throw abortError(signal);
	const pooled = isPool(db);
	const client = pooled ? await db.connect() : db;
	let cancelSent = false;
	let onAbort;
	let destroy = false;
	try {
		if (signal?.aborted)
			throw abortError(signal);
		let resend;
		if (signal) {
			onAbort = () => {
				cancelSent = true;
				sendCancel(client);
				// A cancel request that reaches the server before it starts
				// the statement is ignored: repeat it while the statement
				// has not ended.
				resend = setInterval(() => sendCancel(client), CANCEL_RESEND_MS);
			};
			signal.addEventListener('abort', onAbort, { once: true });
		}
		let res;
		try {
			res = await new Promise((resolve, reject) => {
				client.query(text, values, (err, result) => {
					clearInterval(resend);
					if (err)
						reject(err);
					else
						resolve(result);
				});
			});
		} catch (err) {
			if (cancelSent && err?.code === SQLSTATE_QUERY_CANCELED)
				throw abortError(signal);
			throw mapError(err);
		}
		if (cancelSent) {
			// The statement finished before the cancel request reached the
			// server: that request may still cancel whatever runs next on
			// this connection.  A pooled connection is thrown away.
			destroy = true;
		}
		return res;
	} finally {
		if (onAbort)
			signal?.removeEventListener('abort', onAbort);
		if (pooled)
			client.release(destroy || undefined);
	}
}

// Sends a CancelRequest for the client's backend over a new connection, as
// libpq's PQcancel does.  Unlike pg_cancel_backend() this works through
// PgBouncer, which forwards the request to the server connection the
// client is using at that moment.
function sendCancel(client) {
	const params = client.connectionParameters ?? client;
	const host = params.host ?? 'localhost';
	const port = Number(params.port ?? 5432);
	if (client.processID === undefined || client.processID === null)
		return;
	const socket = host.startsWith('/')
		? net.connect(`${host}/.s.PGSQL.${port}`)
		: net.connect(port, host);
	socket.on('error', () => socket.destroy());
	// Like libpq, write the request and wait for the server to close the
	// connection: closing first can make PgBouncer 1.18 abort.
	socket.setTimeout(10000, () => socket.destroy());
	socket.on('end', () => socket.destroy());
	socket.on('connect', () => {
		const msg = Buffer.alloc(16);
		msg.writeInt32BE(16, 0);
		msg.writeInt32BE(80877102, 4);
		msg.writeInt32BE(client.processID, 8);
		msg.writeInt32BE(client.secretKey, 12);
		socket.write(msg);
	});
}

/**
 * Blocks until the token's transaction has ended and returns 'committed' or
 * 'aborted'; returns 'in progress' if it is still running after timeoutMs
 * milliseconds (omitted or null: no limit).  An AbortSignal cancels the
 * server-side wait (a cancel request, as pg sends it) and rejects with the
 * signal's reason once the server has stopped waiting.
 *
 * Run it outside an explicit transaction (a Pool, or a Client not in BEGIN)
 * so that the statements that follow take a snapshot in which a committed
 * transaction's rows are visible.
 */
export async function wait(db, token, options = {}) {
	const timeoutMs = checkTimeout(options.timeoutMs);
	const res = await cancellableQuery(db,
		"SELECT barrier_wait($1::xid8, $2::float8 * interval '1 millisecond')::text AS state",
		[normalizeToken(token), timeoutMs], options.signal);
	return res.rows[0].state;
}

/**
 * Waits for several tokens with one shared timeout and returns a Map from
 * each token (as a string) to its state.
 */
export async function waitAll(db, tokens, options = {}) {
	const timeoutMs = checkTimeout(options.timeoutMs);
	const toks = Array.from(tokens, normalizeToken);
	const res = await cancellableQuery(db,
		'SELECT token::text AS token, state::text AS state FROM ' +
		"barrier_wait_all($1::xid8[], $2::float8 * interval '1 millisecond')",
		[toks, timeoutMs], options.signal);
	return new Map(res.rows.map((r) => [r.token, r.state]));
}
