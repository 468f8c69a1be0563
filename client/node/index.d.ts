// Type declarations of tx-barrier (index.js): the core API.
import type { Client, Pool, PoolClient } from 'pg';

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
