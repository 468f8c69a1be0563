// Compiles against the package's declarations (tx-barrier, tx-barrier/bullmq)
// the way the README uses them; checked by types.test.mjs with tsc.
import pg from 'pg';
import { FlowProducer, Queue, Worker } from 'bullmq';
import {
	enqueue, status, wait, waitAll, normalizeToken, BarrierError, BarrierTokenError,
	Waiter, BarrierTimeoutError, BarrierWaiterUnavailableError, type BarrierState,
} from 'tx-barrier';
import {
	addWithBarrier, addBulkWithBarrier, addFlowWithBarrier, withBarrier, barrierToken,
	TransactionAbortedError, BarrierJobError,
} from 'tx-barrier/bullmq';

export async function producer(pool: pg.Pool, queue: Queue<{ userId: number }>, flows: FlowProducer) {
	const client = await pool.connect();
	await client.query('BEGIN');
	const token: string = await enqueue(client);
	const state: BarrierState = await status(pool, token);
	const job = await addWithBarrier(queue, client, 'welcome', { userId: 1 }, { attempts: 3 });
	const id: number = job.data.userId;
	const jobs = await addBulkWithBarrier(queue, client, [{ name: 'a', data: { userId: 2 } }]);
	const node = await addFlowWithBarrier(flows, client, { name: 'p', queueName: 'q', children: [] });
	await client.query('COMMIT');
	client.release();
	return [state, id, jobs.length, barrierToken(node.job), normalizeToken(5n)];
}

export async function waiter(pool: pg.Pool, token: string) {
	const ac = new AbortController();
	const s: BarrierState = await wait(pool, token, { timeoutMs: 100, signal: ac.signal });
	const all: Map<string, BarrierState> = await waitAll(pool, [token, 7n], { timeoutMs: null });
	return [s, all.size];
}

export function worker(pool: pg.Pool) {
	const w = new Worker<{ userId: number }>('emails',
		withBarrier(async (job) => job.data.userId * 2, { pool, timeoutMs: 1000, maxWaits: 5 }));
	w.on('failed', (_job, err) => {
		if (err instanceof TransactionAbortedError) {
			const kind: 'TransactionAbortedError' = err.kind;
			const name: 'UnrecoverableError' = err.name;
			console.log(err.token, kind, name);
		}
		if (err instanceof BarrierJobError) {
			const code: string | undefined = err.code;
			console.log(err.kind, code);
		}
		if (err instanceof BarrierJobError || err instanceof BarrierTokenError || err instanceof BarrierError)
			console.log(err.message);
	});
	return w;
}

export async function sharedWaiter(client: pg.Client, token: string) {
	const fromConfig = new Waiter({ host: 'db', database: 'shop' }, { reconnectDelayMs: 50 });
	const fromClient = new Waiter(client);
	const fromFactory = new Waiter(() => new pg.Client('postgres://db/shop'));
	const ac = new AbortController();
	let s: 'committed' | 'aborted' | undefined;
	try {
		s = await fromConfig.wait(token, { timeoutMs: 1000, signal: ac.signal });
	} catch (err) {
		if (err instanceof BarrierTimeoutError || err instanceof BarrierWaiterUnavailableError)
			console.log(err.sqlstate);
	}
	const n: number = fromClient.pending + fromClient.reconnects + fromClient.cancels;
	const pid: number | undefined = fromFactory.backendPid;
	const w = new Worker('emails', withBarrier(async () => 1, { waiter: fromFactory, timeoutMs: null }));
	await Promise.all([fromConfig.close(), fromClient.close(), fromFactory.close()]);
	return [s, n, pid, w];
}
