// The TypeScript declarations (index.d.ts, bullmq.d.ts): a program using
// the documented API compiles under --strict, and misuses are rejected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const dir = fileURLToPath(new URL('./types/', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function compile(file) {
	return new Promise((resolve) => {
		execFile(process.execPath, [tsc, '--strict', '--noEmit', '--module', 'nodenext',
			'--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck',
			'--types', 'node', '--pretty', 'false', `${dir}${file}`],
			{ cwd: dir }, (err, stdout) => resolve({ code: err ? err.code : 0, out: stdout }));
	});
}

test('the documented API compiles under --strict', async () => {
	const { code, out } = await compile('usage.ts');
	assert.equal(out, '');
	assert.equal(code, 0);
});

test('misuses are type errors, one per marked line', async () => {
	const { code, out } = await compile('misuse.ts');
	assert.notEqual(code, 0);
	const lines = readFileSync(`${dir}misuse.ts`, 'utf8').split('\n');
	const expected = lines.flatMap((l, i) => (l.endsWith('// error') ? [i + 1] : []));
	const got = [...new Set([...out.matchAll(/misuse\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])))];
	assert.deepEqual(got.sort((a, b) => a - b), expected, out);
});
