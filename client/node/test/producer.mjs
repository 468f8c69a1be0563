// A producer in its own process, for the crash tests: inserts item ID and
// adds a barrier job for it in one transaction, then either commits
// ("commit") or not ("hold"), prints what it did and waits to be killed.
// Usage: node producer.mjs QUEUE ID commit|hold
import pg from 'pg';
import { Queue } from 'bullmq';
import { addWithBarrier } from 'tx-barrier/bullmq';

const [queueName, id, mode] = process.argv.slice(2);
const queue = new Queue(queueName, { connection: { url: process.env.TXB_REDIS_URL } });
const client = new pg.Client();
await client.connect();
await client.query('BEGIN');
await client.query('INSERT INTO node_items (id) VALUES ($1)', [Number(id)]);
const job = await addWithBarrier(queue, client, 'crash', { item: Number(id) });
if (mode === 'commit') {
	await client.query('COMMIT');
	process.stdout.write(`committed ${job.id}\n`);
} else {
	process.stdout.write(`added ${job.id}\n`);
}
setInterval(() => {}, 1 << 30);
