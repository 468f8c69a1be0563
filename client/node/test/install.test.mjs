// The package as an application gets it, in scratch application
// directories with their own node_modules (packages from the npm cache that
// `npm ci` filled, at the versions of the committed lockfile):
//
//   * installed the ways README.md documents (`npm install --install-links
//     PATH`, and `npm pack` + installing the tarball): one copy of bullmq,
//     the application's, and a real producer and worker commit a job;
//   * linked (`npm install PATH`, a symlink) while client/node has a
//     node_modules of its own: two copies of bullmq, and a rolled-back job
//     with `attempts: 3` still fails once, without retries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
	copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addWithBarrier } from 'tx-barrier/bullmq';
import {
	newClient, until, itemId, startWorker, startProducer, openQueue, runsOf, failuresOf,
	uniqueName,
} from './helpers.mjs';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const testDir = fileURLToPath(new URL('.', import.meta.url));
const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
// The versions the lockfile installed into client/node/node_modules.
const locked = (name) =>
	JSON.parse(readFileSync(join(pkgDir, 'node_modules', name, 'package.json'), 'utf8')).version;
const deps = ['bullmq', 'pg', 'ioredis'].map((n) => `${n}@${locked(n)}`);

const scratch = mkdtempSync(join(tmpdir(), 'txb-node-apps-'));
let db;
const cleanups = [];

before(async () => {
	db = await newClient();
});

after(async () => {
	for (const c of cleanups.reverse())
		await c();
	await db.end();
	rmSync(scratch, { recursive: true, force: true });
});

function run(cmd, args, cwd) {
	return new Promise((resolve, reject) => {
		execFile(cmd, args, { cwd, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
			if (err)
				reject(new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${err.message}\n${stdout}${stderr}`));
			else
				resolve(stdout);
		});
	});
}

const npmFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

// A scratch application: package.json, the packages `args` install, and
// copies of the test worker and producer, which import bullmq, pg and
// tx-barrier by name (so from the application's node_modules).
async function application(name, args) {
	const dir = join(scratch, name);
	mkdirSync(dir, { recursive: true });
	writeFileSync(join(dir, 'package.json'),
		JSON.stringify({ name, version: '0.0.0', private: true, type: 'module' }));
	await run('npm', ['install', ...npmFlags, ...args], dir);
	for (const f of ['worker.mjs', 'producer.mjs'])
		copyFileSync(join(testDir, f), join(dir, f));
	// Does the UnrecoverableError tx-barrier/bullmq extends come from the
	// application's bullmq?
	writeFileSync(join(dir, 'copies.mjs'), [
		"import { UnrecoverableError } from 'bullmq';",
		"import { TransactionAbortedError } from 'tx-barrier/bullmq';",
		"process.stdout.write(String(new TransactionAbortedError('x', '1') instanceof UnrecoverableError));",
	].join('\n'));
	return dir;
}

async function oneCopy(dir) {
	return (await run(process.execPath, ['copies.mjs'], dir)) === 'true';
}

async function queueFor(prefix, dir) {
	const name = uniqueName(prefix);
	const queue = await openQueue(name);
	const worker = await startWorker(name, {}, join(dir, 'worker.mjs'));
	cleanups.push(async () => {
		await worker.stop();
		await queue.obliterate({ force: true });
		await queue.close();
	});
	return { name, queue };
}

async function stateOf(queue, id) {
	const job = await queue.getJob(id);
	return job ? job.getState() : 'missing';
}

// A producer of the application commits a job; its worker runs it once and
// sees the committed row.
async function commitRoundTrip(dir, prefix) {
	const { name, queue } = await queueFor(prefix, dir);
	const { child, line } = await startProducer(name, itemId(), 'commit', join(dir, 'producer.mjs'));
	child.kill('SIGKILL');
	assert.match(line, /^committed /);
	const jobId = line.split(' ')[1];
	await until(async () => (await stateOf(queue, jobId)) === 'completed', 'the job to complete');
	const runs = await runsOf(db, name);
	assert.equal(runs.length, 1);
	assert.equal(runs[0].visible, true);
}

test('npm install --install-links PATH (README): a copy of the package, the application\'s bullmq', async () => {
	const dir = await application('app-links', ['--install-links', pkgDir, ...deps]);
	assert.ok(lstatSync(join(dir, 'node_modules/tx-barrier')).isDirectory(), 'a copy, not a link');
	assert.equal(JSON.parse(readFileSync(join(dir, 'node_modules/tx-barrier/package.json'), 'utf8')).version,
		version);
	assert.ok(await oneCopy(dir), 'tx-barrier/bullmq uses the application\'s bullmq');
	await commitRoundTrip(dir, 'links');
});

test('npm pack, then npm install the tarball (README)', async () => {
	const packed = (await run('npm', ['pack', '--loglevel=error', '--pack-destination', scratch, pkgDir],
		scratch)).trim().split('\n').at(-1);
	assert.equal(packed, `tx-barrier-${version}.tgz`);
	const dir = await application('app-tarball', [join(scratch, packed), ...deps]);
	assert.ok(await oneCopy(dir), 'tx-barrier/bullmq uses the application\'s bullmq');
	await commitRoundTrip(dir, 'tarball');
});

test('two copies of bullmq: a rolled-back job with attempts: 3 fails once, without retries', async () => {
	// A plain `npm install PATH` links client/node, which has node_modules of
	// its own (npm ci): tx-barrier/bullmq resolves that bullmq, the
	// application's worker its own.
	const dir = await application('app-linked', ['--install-links=false', pkgDir, ...deps]);
	assert.ok(lstatSync(join(dir, 'node_modules/tx-barrier')).isSymbolicLink(), 'a link');
	assert.equal(await oneCopy(dir), false, 'two copies of bullmq');
	const { name, queue } = await queueFor('copies', dir);
	const producer = await newClient();
	cleanups.push(() => producer.end());
	await producer.query('BEGIN');
	const item = itemId();
	await producer.query('INSERT INTO node_items (id) VALUES ($1)', [item]);
	const job = await addWithBarrier(queue, producer, 'work', { item }, { attempts: 3 });
	await producer.query('ROLLBACK');
	// 'failed' is final: a job to be retried goes back to wait instead.
	await until(async () => (await stateOf(queue, job.id)) === 'failed', 'the job to fail');
	const failed = await queue.getJob(job.id);
	assert.equal(failed.attemptsMade, 1, 'no retries');
	const failures = await until(async () => {
		const f = await failuresOf(db, name);
		return f.length ? f : null;
	}, 'the failed handler');
	assert.equal(failures.length, 1, 'the failure path ran once');
	assert.equal(failures[0].err_kind, 'TransactionAbortedError');
	assert.equal(failures[0].err_name, 'UnrecoverableError');
	assert.equal(failures[0].attempts_made, 1);
	assert.deepEqual(await runsOf(db, name), []);
});
