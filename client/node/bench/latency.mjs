// Commit -> job-start latency of a BullMQ job added with a barrier before
// COMMIT, against the same job added with a plain queue.add() after COMMIT
// (the usual "publish after commit"), measured alternately in one run.
//
//   PGHOST=... PGDATABASE=db_with_tx_barrier TXB_REDIS_URL=redis://127.0.0.1:6379 \
//     node bench/latency.mjs [ROUNDS]
//
// The worker runs in the same process (its own Redis and PostgreSQL
// connections) so that both ends read one monotonic clock: clocks of two
// processes (performance.timeOrigin) disagree by up to a millisecond or
// so.  The processor stamps the time it starts; the difference to the
// moment the producer's COMMIT returned is the latency.  In the barrier
// case the producer commits once the worker is blocked in barrier_wait (the
// usual case: the job is picked up at once and waits for the commit).
import pg from 'pg';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { addWithBarrier, withBarrier } from 'tx-barrier/bullmq';

const connection = { url: process.env.TXB_REDIS_URL ?? 'redis://127.0.0.1:6379', maxRetriesPerRequest: null };

const rounds = Number(process.argv[2] ?? 200);
const name = `txb-latency-${process.pid}`;
const queue = new Queue(name, { connection });
const events = new QueueEvents(name, { connection });
await events.waitUntilReady();
const pool = new pg.Pool({ max: 2 });
const worker = new Worker(name, withBarrier(async () => performance.now(), { pool, timeoutMs: 10000 }),
	{ connection, concurrency: 2 });
await worker.waitUntilReady();
const producer = new pg.Client();
await producer.connect();
const observer = new pg.Client();
await observer.connect();
await producer.query('CREATE TEMP TABLE bench_items (id int)');
const waiters = async () => (await observer.query(
	"SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'transactionid' " +
	"AND query LIKE '%barrier_wait%'")).rows[0].n;

async function barrierRound(i) {
	await producer.query('BEGIN');
	await producer.query('INSERT INTO bench_items VALUES ($1)', [i]);
	const job = await addWithBarrier(queue, producer, 'b', { i });
	while ((await waiters()) === 0)
		;
	await producer.query('COMMIT');
	const t0 = performance.now();
	return (await job.waitUntilFinished(events)) - t0;
}

async function afterCommitRound(i) {
	await producer.query('BEGIN');
	await producer.query('INSERT INTO bench_items VALUES ($1)', [i]);
	await producer.query('COMMIT');
	const t0 = performance.now();
	const job = await queue.add('p', { i });
	return (await job.waitUntilFinished(events)) - t0;
}

const barrier = [];
const plain = [];
for (let i = 0; i < 10; i++) {		// warm-up
	await barrierRound(i);
	await afterCommitRound(i);
}
for (let i = 0; i < rounds; i++) {
	barrier.push(await barrierRound(i));
	plain.push(await afterCommitRound(i));
}
const pct = (xs, p) => {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const fmt = (x) => x.toFixed(2).padStart(8);
console.log(`commit -> job start, ms, ${rounds} rounds each, alternating`);
console.log('                              p50      p99');
console.log(`barrier job (added before):${fmt(pct(barrier, 0.5))} ${fmt(pct(barrier, 0.99))}`);
console.log(`plain add after COMMIT:    ${fmt(pct(plain, 0.5))} ${fmt(pct(plain, 0.99))}`);
console.log(`ratio barrier/plain:       ${fmt(pct(barrier, 0.5) / pct(plain, 0.5))} ` +
	`${fmt(pct(barrier, 0.99) / pct(plain, 0.99))}`);
await worker.close();
await pool.end();
await queue.obliterate({ force: true });
await queue.close();
await events.close();
await producer.end();
await observer.end();
