import { Queue } from 'bullmq';
import { addWithBarrier } from 'tx-barrier/bullmq';
import { connection } from './connection.mjs';

export const queue = new Queue('emails', { connection });

// Inside the caller's BEGIN ... COMMIT on `client` (a pg.Client or a
// PoolClient): the user's row and its welcome job, in one transaction.
export async function signUp(client, email) {
	const { rows } = await client.query(
		'INSERT INTO users (email) VALUES ($1) RETURNING id', [email]);
	// Takes the token on `client`, then calls queue.add() at once, before COMMIT.
	const job = await addWithBarrier(queue, client, 'welcome', { userId: rows[0].id },
		{ attempts: 5, backoff: { type: 'fixed', delay: 100 } });
	return { userId: rows[0].id, job };
}
