// Must NOT compile: each line is a misuse the declarations should reject
// (types.test.mjs expects one error per line marked "error").
import pg from 'pg';
import { Queue } from 'bullmq';
import { wait, Waiter } from 'tx-barrier';
import { addWithBarrier, withBarrier } from 'tx-barrier/bullmq';

export async function misuse(pool: pg.Pool, client: pg.PoolClient, queue: Queue<{ userId: number }>) {
	await addWithBarrier(queue, client, 'x', { userId: 'one' }); // error
	await wait(pool, { token: 1 }); // error
	await wait(pool, '1', { timeout: 5 }); // error
	withBarrier(async () => 1, { timeoutMs: 5 }); // error
	const waiter = new Waiter({ database: 'shop' });
	const state: 'in progress' = await waiter.wait('1'); // error
	await waiter.wait('1', { timeout: 5 }); // error
	withBarrier(async () => 1, { pool, waiter }); // error
	console.log(state);
}
