// Type declarations of tx-barrier (index.js): the core API.
import type { Client, ClientConfig, Pool, PoolClient } from 'pg';

/** A connection to take or check tokens on: a pg Client, PoolClient or Pool. */
export type Queryable = Client | PoolClient | Pool;
/** A barrier token: an xid8, as a decimal string (or a bigint / safe integer on input). */
export type BarrierToken = string;
export type TokenInput = string | bigint | number;
export type BarrierState = 'in progress' | 'committed' | 'aborted';

export const IN_PROGRESS: 'in progress';
export const COMMITTED: 'committed';
export const ABORTED: 'aborted';
export const STATES: readonly BarrierState[];

export interface WaitOptions {
	/** Milliseconds one wait may block; omitted or null: no limit. */
	timeoutMs?: number | null;
	/** Cancels the server-side wait; the promise rejects with signal.reason. */
	signal?: AbortSignal;
}

/** Base class of the errors this package raises. */
export class BarrierError extends Error {
	/** The server's SQLSTATE; undefined for client-side errors. */
	readonly sqlstate: string | undefined;
	/** Same as sqlstate. */
	readonly code: string | undefined;
	constructor(message: string, options?: { sqlstate?: string; cause?: unknown });
}
/** The server cannot say what became of the token's transaction (22023, 55000). */
export class BarrierTokenError extends BarrierError {}
/** The database has no tx_barrier extension (42883 / 42704). */
export class BarrierExtensionMissingError extends BarrierError {}
/** Any other server error raised while taking or checking a token. */
export class BarrierDatabaseError extends BarrierError {}
/** A token or timeout that is not valid input. */
export class BarrierArgumentError extends BarrierError {}

/** The token as a decimal string; throws BarrierArgumentError if it is not an unsigned 64-bit integer. */
export function normalizeToken(token: TokenInput): BarrierToken;
/** Whether a pg Client is inside a transaction block (a Pool never is). */
export function inTransaction(db: Queryable): boolean;
/** Takes a token in the client's current (sub)transaction. */
export function enqueue(client: Client | PoolClient): Promise<BarrierToken>;
/** The state of the token's transaction, without waiting. */
export function status(db: Queryable, token: TokenInput): Promise<BarrierState>;
/** Waits until the token's transaction has ended, or timeoutMs ('in progress'). */
export function wait(db: Queryable, token: TokenInput, options?: WaitOptions): Promise<BarrierState>;
/** Waits for several tokens with one shared timeout; maps each token to its state. */
export function waitAll(db: Queryable, tokens: Iterable<TokenInput>, options?: WaitOptions):
	Promise<Map<BarrierToken, BarrierState>>;

/** A Waiter's wait had no answer within its timeoutMs (the wait is withdrawn). */
export class BarrierTimeoutError extends BarrierError {}
/**
 * The server cannot serve a Waiter: no tx_barrier in shared_preload_libraries
 * (55000), or no barrier_wait_any() (42883: extension 1.0 or 1.1, portable
 * edition).
 */
export class BarrierWaiterUnavailableError extends BarrierError {}

export interface WaiterOptions {
	/** First delay before connecting again after a loss, in ms (default 100), doubling up to */
	reconnectDelayMs?: number;
	/** this many ms (default 10000). */
	reconnectMaxDelayMs?: number;
}

/** Where a Waiter gets its connection: a Client it owns, a factory of Clients, or a Client config. */
export type WaiterSource = Client | (() => Client | Promise<Client>) | ClientConfig | string;

/** One connection (one backend) serving every pending wait of a process. */
export class Waiter {
	constructor(source: WaiterSource, options?: WaiterOptions);
	/**
	 * Resolves with 'committed' or 'aborted' once the token's transaction has ended;
	 * rejects with BarrierTimeoutError after timeoutMs, with signal.reason on abort.
	 */
	wait(token: TokenInput, options?: WaitOptions): Promise<'committed' | 'aborted'>;
	/** Rejects the pending waits with BarrierError and ends the connection. */
	close(): Promise<void>;
	/** The server pid of the current connection, undefined while there is none. */
	readonly backendPid: number | undefined;
	/** How many distinct tokens are waited for now. */
	readonly pending: number;
	/** Times the waiter connected again after losing its connection. */
	readonly reconnects: number;
	/** Statements cancelled to take new tokens in. */
	readonly cancels: number;
}
