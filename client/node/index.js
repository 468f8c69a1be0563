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

// ---------------------------------------------------------------------------
// The shared waiter: one connection serving every pending wait of a process.

/** A Waiter's wait: the token's transaction was still running after timeoutMs. */
export class BarrierTimeoutError extends BarrierError {}

/**
 * The server cannot serve a Waiter: barrier_wait_any() would have to sleep
 * and tx_barrier is not in shared_preload_libraries (55000), or there is no
 * barrier_wait_any() (42883: the extension at 1.0 or 1.1, the portable
 * edition, no extension).  Wait with wait() on a connection of your own.
 */
export class BarrierWaiterUnavailableError extends BarrierError {}

const SQL_WAIT_ANY = 'SELECT token::text AS token, state::text AS state ' +
	'FROM barrier_wait_any($1::xid8[])';
// Looks without sleeping (no preloading needed): isolating a bad token.
const SQL_LOOK_ANY = 'SELECT token::text AS token, state::text AS state ' +
	"FROM barrier_wait_any($1::xid8[], interval '0')";
const TOKEN_SQLSTATES = new Set([SQLSTATE_INVALID, SQLSTATE_TOO_OLD, '2202E']);
const CANCEL_FIRST_RESEND_MS = 20;
const CANCEL_MAX_RESEND_MS = 1000;
// close() ends a statement by a cancel request; a server gone without a
// word (no RST) answers neither, so after this long the socket is destroyed.
const CLOSE_GRACE_MS = 5000;

function isClient(x) {
	return x && typeof x === 'object' && typeof x.query === 'function' &&
		typeof x.connect === 'function' && !isPool(x);
}

/**
 * One connection, many waits.  `new Waiter(source, options)`: source is a
 * pg Client (the Waiter owns it and ends it on close(); after losing it the
 * Waiter connects again with a new Client of the same class and connection
 * parameters), a function returning a new pg Client (connected or not), or
 * a pg Client config (object or connection string).  Options:
 *
 *   reconnectDelayMs     first delay before connecting again (default 100),
 *                        doubling up to
 *   reconnectMaxDelayMs  (default 10000).
 *
 * Its loop runs barrier_wait_any(pending tokens): it sleeps until the first
 * of them has ended and answers every one that has.  A token added while
 * it sleeps cancels the statement (a cancel request, repeated from 20 ms
 * doubling to 1 s until the statement has ended: a request that reaches the
 * server before the statement starts is ignored) and the statement is issued
 * again with the larger set.  A lost connection (server restart, failover,
 * pg_terminate_backend) is made again with backoff for as long as waits are
 * pending, and every pending token is waited for again.  Nothing connects
 * before the first wait; close() ends the connection (an idle one keeps the
 * process alive).
 */
export class Waiter {
	#source;
	#makeClient;
	#delay0;
	#delayMax;
	#client = null;
	#connecting = null;
	#clientLost = false;
	#calls = new Map(); // token -> Set of calls
	#sent = new Set();
	#generation = 0;
	#running = false;
	#cancelFor = -1;
	#resend = null;
	#wake = null;
	#loop = null;
	#closed = false;
	#lastError = null;
	#backoffTimer = null;
	#backoffWake = null;
	/** Times the waiter connected again after losing its connection. */
	reconnects = 0;
	/** Statements cancelled to take new tokens in. */
	cancels = 0;

	constructor(source, options = {}) {
		if (source === undefined || source === null)
			throw new BarrierArgumentError('Waiter needs a pg Client, a Client factory or a config');
		const { reconnectDelayMs = 100, reconnectMaxDelayMs = 10000 } = options;
		if (!(reconnectDelayMs > 0) || !(reconnectMaxDelayMs >= reconnectDelayMs))
			throw new BarrierArgumentError('need 0 < reconnectDelayMs <= reconnectMaxDelayMs');
		this.#delay0 = reconnectDelayMs;
		this.#delayMax = reconnectMaxDelayMs;
		if (typeof source === 'function') {
			this.#makeClient = source;
		} else if (isClient(source)) {
			this.#source = source;
			const Client = source.constructor;
			const params = { ...source.connectionParameters };
			this.#makeClient = () => new Client(params);
		} else {
			this.#makeClient = async () => new (await import('pg')).default.Client(source);
		}
	}

	/** The server pid of the current connection (undefined while there is none). */
	get backendPid() {
		return this.#client && !this.#clientLost ? this.#client.processID ?? undefined : undefined;
	}

	/** How many distinct tokens are waited for now. */
	get pending() {
		return this.#calls.size;
	}

	/**
	 * Resolves with 'committed' or 'aborted' once the token's transaction has
	 * ended.  Rejects with BarrierTimeoutError after timeoutMs (omitted or
	 * null: no limit), with the signal's reason when the AbortSignal fires
	 * (the wait is withdrawn), with BarrierTokenError for a token the server
	 * cannot answer for and BarrierWaiterUnavailableError when the server
	 * cannot sleep on it, all carrying the SQLSTATE.
	 */
	wait(token, options = {}) {
		let tok, timeoutMs;
		try {
			tok = normalizeToken(token);
			timeoutMs = checkTimeout(options.timeoutMs);
		} catch (err) {
			return Promise.reject(err);
		}
		const { signal } = options;
		if (signal?.aborted)
			return Promise.reject(abortError(signal));
		if (this.#closed)
			return Promise.reject(new BarrierError('the waiter is closed'));
		return new Promise((resolve, reject) => {
			const call = { token: tok, resolve, reject, timer: null, onAbort: null };
			call.settle = (fn, v) => {
				if (call.timer)
					clearTimeout(call.timer);
				if (call.onAbort)
					signal.removeEventListener('abort', call.onAbort);
				fn(v);
			};
			if (timeoutMs !== null) {
				call.timer = setTimeout(() => {
					if (this.#withdraw(call))
						call.settle(reject, this.#timeoutError(tok, timeoutMs));
				}, timeoutMs);
			}
			if (signal) {
				call.onAbort = () => {
					if (this.#withdraw(call))
						call.settle(reject, abortError(signal));
				};
				signal.addEventListener('abort', call.onAbort, { once: true });
			}
			this.#add(call);
		});
	}

	/** Stops the waiter: pending waits reject with BarrierError, the connection ends. */
	async close() {
		if (this.#closed)
			return this.#loop ?? undefined;
		this.#closed = true;
		const calls = [...this.#calls.values()].flatMap((s) => [...s]);
		this.#calls.clear();
		for (const call of calls)
			call.settle(call.reject, new BarrierError('the waiter was closed'));
		if (this.#running)
			this.#cancel();
		this.#wake?.();
		this.#backoffWake?.();
		if (this.#loop) {
			const force = setTimeout(() => {
				for (const c of [this.#client, this.#connecting])
					c?.connection?.stream?.destroy();
			}, CLOSE_GRACE_MS);
			try {
				await this.#loop;
			} finally {
				clearTimeout(force);
			}
		} else if (this.#source)
			await this.#source.end().catch(() => {});
	}

	#timeoutError(tok, timeoutMs) {
		const why = !this.#client && this.#lastError
			? ` (no connection to the server: ${this.#lastError.message})` : '';
		return new BarrierTimeoutError(
			`the transaction of barrier token ${tok} is still in progress after ${timeoutMs} ms${why}`);
	}

	#add(call) {
		let set = this.#calls.get(call.token);
		if (!set)
			this.#calls.set(call.token, (set = new Set()));
		set.add(call);
		if (this.#running && !this.#sent.has(call.token) && this.#cancelFor !== this.#generation) {
			this.#cancelFor = this.#generation;
			this.cancels++;
			this.#cancel();
		}
		this.#loop ??= this.#run();
		this.#wake?.();
	}

	#withdraw(call) {
		const set = this.#calls.get(call.token);
		if (!set || !set.has(call))
			return false;
		set.delete(call);
		if (set.size === 0)
			this.#calls.delete(call.token);
		return true;
	}

	// Cancels the statement in flight, repeating the request until it ends.
	#cancel() {
		const client = this.#client;
		const gen = this.#generation;
		if (!client)
			return;
		clearTimeout(this.#resend);
		let ms = CANCEL_FIRST_RESEND_MS;
		const again = () => {
			if (!this.#running || this.#generation !== gen || this.#client !== client) {
				this.#resend = null;
				return;
			}
			sendCancel(client);
			this.#resend = setTimeout(again, ms);
			ms = Math.min(ms * 2, CANCEL_MAX_RESEND_MS);
		};
		again();
	}

	#sleep(ms) {
		return new Promise((resolve) => {
			this.#backoffWake = () => {
				clearTimeout(this.#backoffTimer);
				resolve();
			};
			this.#backoffTimer = setTimeout(resolve, ms);
		}).finally(() => {
			this.#backoffWake = null;
		});
	}

	async #connect() {
		let client = this.#source;
		this.#source = undefined;
		if (!client)
			client = await this.#makeClient();
		client.on('error', (err) => {
			// A lost idle connection: noticed here, not as a failed query.
			if (this.#client === client) {
				this.#clientLost = true;
				this.#lastError = err;
				this.#wake?.();
			}
		});
		client.on('end', () => {
			if (this.#client === client)
				this.#clientLost = true;
		});
		// A Client given connected is used as it is.
		if (client.processID === undefined || client.processID === null) {
			this.#connecting = client;
			try {
				await client.connect();
			} finally {
				this.#connecting = null;
			}
		}
		return client;
	}

	#drop() {
		const client = this.#client;
		this.#client = null;
		this.#clientLost = false;
		if (client)
			client.end().catch(() => {});
	}

	async #run() {
		let delay = this.#delay0;
		let lost = false;
		try {
			while (!this.#closed) {
				if (this.#calls.size === 0) {
					await new Promise((resolve) => {
						this.#wake = resolve;
					});
					this.#wake = null;
					continue;
				}
				if (this.#client && this.#clientLost)
					this.#drop();
				if (!this.#client) {
					let client;
					try {
						client = await this.#connect();
					} catch (err) {
						this.#lastError = err;
						await this.#sleep(delay);
						delay = Math.min(delay * 2, this.#delayMax);
						continue;
					}
					if (this.#closed) {
						client.end().catch(() => {});
						break;
					}
					this.#client = client;
					this.#lastError = null;
					if (lost)
						this.reconnects++;
					lost = false;
					continue;
				}
				const tokens = [...this.#calls.keys()];
				this.#generation++;
				this.#sent = new Set(tokens);
				this.#running = true;
				let rows;
				try {
					rows = (await this.#client.query(SQL_WAIT_ANY, [tokens])).rows;
				} catch (err) {
					this.#running = false;
					const outcome = await this.#failed(tokens, err);
					if (outcome === 'lost') {
						lost = true;
						this.#lastError = err;
						this.#drop();
					}
					if (outcome === 'lost' || outcome === 'again') {
						await this.#sleep(delay);
						delay = Math.min(delay * 2, this.#delayMax);
					}
					continue;
				}
				this.#running = false;
				delay = this.#delay0;
				this.#answer(rows);
			}
		} catch (err) {
			// A bug: do not leave callers waiting.
			this.#closed = true;
			const calls = [...this.#calls.values()].flatMap((s) => [...s]);
			this.#calls.clear();
			for (const call of calls)
				call.settle(call.reject, new BarrierError(`the waiter stopped: ${err?.message ?? err}`, { cause: err }));
		} finally {
			this.#running = false;
			const client = this.#client;
			this.#client = null;
			if (client)
				await client.end().catch(() => {});
		}
	}

	#answer(rows) {
		for (const { token, state } of rows) {
			const set = this.#calls.get(token);
			if (!set)
				continue;
			this.#calls.delete(token);
			for (const call of set) {
				if (state === COMMITTED || state === ABORTED)
					call.settle(call.resolve, state);
				else // only the caller's own transaction: never on this connection
					call.settle(call.reject, new BarrierError(`unexpected barrier state ${state} for token ${token}`));
			}
		}
	}

	#fail(tokens, errorFor) {
		for (const token of tokens) {
			const set = this.#calls.get(token);
			if (!set)
				continue;
			this.#calls.delete(token);
			for (const call of set)
				call.settle(call.reject, errorFor());
		}
	}

	// Handles an error of the waiting statement: 'lost' (connect again),
	// 'again' (issue it again after a delay) or undefined (again, now).
	async #failed(tokens, err) {
		const code = typeof err?.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code)
			? err.code : undefined;
		if (code === SQLSTATE_QUERY_CANCELED && !this.#clientLost)
			return undefined; // our cancel, or statement_timeout
		if (this.#clientLost || code === undefined || code.startsWith('08') ||
			code === '57P01' || code === '57P02' || code === '57P03')
			return 'lost';
		const message = String(err.message ?? '');
		if ((code === SQLSTATE_TOO_OLD && /shared_preload_libraries/.test(message)) ||
			(code === SQLSTATE_UNDEFINED_FUNCTION && /barrier_wait_any/.test(message))) {
			this.#fail(tokens, () => new BarrierWaiterUnavailableError(
				`the server cannot serve a tx_barrier Waiter (${code}: ${message}): it needs ` +
				'barrier_wait_any() (extension version 1.2: CREATE EXTENSION tx_barrier, or ' +
				'ALTER EXTENSION tx_barrier UPDATE; not the portable edition) and tx_barrier in ' +
				'shared_preload_libraries (then restart the server); or wait with wait() on a ' +
				'connection of your own', { sqlstate: code, cause: err }));
			return undefined;
		}
		if (TOKEN_SQLSTATES.has(code)) {
			try {
				await this.#isolate(tokens);
			} catch (err2) {
				return this.#failed(tokens, err2);
			}
			return undefined;
		}
		if (code === '40001') // a standby's recovery conflict
			return 'again';
		this.#fail(tokens, () => mapError(err));
		return undefined;
	}

	// One bad token fails a whole call: finds the bad ones by halves, looking
	// without sleeping; answers the ended tokens met on the way.
	async #isolate(tokens) {
		const parts = [tokens];
		while (parts.length > 0) {
			const part = parts.pop().filter((t) => this.#calls.has(t));
			if (part.length === 0)
				continue;
			let rows;
			try {
				rows = (await this.#client.query(SQL_LOOK_ANY, [part])).rows;
			} catch (err) {
				if (this.#clientLost || !TOKEN_SQLSTATES.has(err?.code))
					throw err;
				if (part.length === 1) {
					this.#fail(part, () => mapError(err));
				} else {
					const half = part.length >> 1;
					parts.push(part.slice(half), part.slice(0, half));
				}
				continue;
			}
			this.#answer(rows);
		}
	}
}
