// Type declarations of tx-barrier/bullmq (bullmq.js): the BullMQ integration.
import type {
	FlowJob, FlowOpts, FlowProducer, Job, JobNode, Processor, Queue,
	UnrecoverableError,
} from 'bullmq';
import type { Client, Pool, PoolClient } from 'pg';
import type { BarrierToken, Waiter } from './index.js';

export { COMMITTED, ABORTED, IN_PROGRESS } from './index.js';

/** Job option carrying the barrier token. */
export const TOKEN_OPTION: 'txBarrierToken';
/** Field of the job's Redis hash counting the barrier's delays. */
export const WAITS_FIELD: 'txBarrierWaits';

/*
 * The two errors below are BullMQ UnrecoverableErrors twice over: subclasses
 * of the UnrecoverableError of the bullmq this package resolves, and named
 * 'UnrecoverableError', which is what every copy of BullMQ also tests, so
 * that a job never retries even when the application has another copy of
 * bullmq.  Tell them apart with instanceof (the classes are this package's)
 * or `kind`; `util.inspect` shows the class name.
 */

/** The producer's transaction (or savepoint) rolled back: the job failed without retries. */
export class TransactionAbortedError extends UnrecoverableError {
	readonly name: 'UnrecoverableError';
	readonly kind: 'TransactionAbortedError';
	readonly token: BarrierToken;
	constructor(message: string, token: BarrierToken);
}

/** The barrier could not be passed: maxWaits exceeded, unknown token, no extension. */
export class BarrierJobError extends UnrecoverableError {
	readonly name: 'UnrecoverableError';
	readonly kind: 'BarrierJobError';
	readonly token: BarrierToken;
	/** The SQLSTATE of `cause`, if it carries one. */
	readonly sqlstate?: string;
	/** Same as sqlstate. */
	readonly code: string | undefined;
	constructor(message: string, token: BarrierToken, cause?: Error);
}

export interface BarrierWorkerOptionsBase {
	/** How long one wait may block, in ms (default 10000; null: no limit). */
	timeoutMs?: number | null;
	/** Delay of a job put back while its transaction is open, in ms (default 1000). */
	delayMs?: number;
	/** Delay after a database error, in ms (default 1000). */
	errorDelayMs?: number;
	/** Delays before failing with BarrierJobError (default null: no limit). */
	maxWaits?: number | null;
}

/** Waits on a pool (one connection per waiting job) or on a Waiter (one for all). */
export type BarrierWorkerOptions = BarrierWorkerOptionsBase & (
	| { /** The pool the worker waits on. */ pool: Pool; waiter?: undefined }
	| { /** The shared waiter the worker waits on. */ waiter: Waiter; pool?: undefined });

export function barrierToken(job: Job): BarrierToken | undefined;
export function barrierWaits(job: Job): Promise<number | undefined>;

/** queue.add(name, data, opts), with the token of the transaction open on client. */
export function addWithBarrier<Q extends Queue<any, any, any>>(
	queue: Q, client: Client | PoolClient, name: Parameters<Q['add']>[0],
	data: Parameters<Q['add']>[1], opts?: Parameters<Q['add']>[2]): ReturnType<Q['add']>;

/** queue.addBulk(jobs), all with one token of the transaction open on client. */
export function addBulkWithBarrier<Q extends Queue<any, any, any>>(
	queue: Q, client: Client | PoolClient, jobs: Parameters<Q['addBulk']>[0]):
	ReturnType<Q['addBulk']>;

export function addFlowWithBarrier(flowProducer: FlowProducer, client: Client | PoolClient,
	flow: FlowJob, opts?: FlowOpts): Promise<JobNode>;
export function addFlowWithBarrier(flowProducer: FlowProducer, client: Client | PoolClient,
	flows: FlowJob[]): Promise<JobNode[]>;

export function withBarrier<DataType = any, ResultType = any, NameType extends string = string>(
	processor: Processor<DataType, ResultType, NameType>, options: BarrierWorkerOptions):
	Processor<DataType, ResultType, NameType>;
