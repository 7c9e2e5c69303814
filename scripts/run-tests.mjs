#!/usr/bin/env node
// `npm test`'s suite: every dist/test/*.test.js through node:test's run(), in two pools at once.
// The suite is CPU-bound on the 2-core VM, so two files at a time keep both cores busy, and a third
// CPU-bound file only adds contention. But some files mostly wait (on leases to expire, on PostgreSQL,
// on Chromium, on timeouts, on a soak's pacing): they run one at a time in a pool of their own,
// beside the two busy ones, filling the time those leave idle. Within each pool the longest files
// start first, so the run does not end with one long file alone.
// Measured on that VM: `npm test`'s wall time, docs/testing.md.
//
// The waiting pool's report is printed after the busy pool's; the exit status is 1 if any test
// failed in either. TEST_CONCURRENCY (default 2) sets the busy pool's size; TEST_WAITING_POOL=0
// runs every file in the busy pool.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TEST_DIR = join(ROOT, 'dist', 'test');

/** Files that spend much of their wall time waiting, longest first (seconds of wall, of CPU, when
 * they ran two at a time). The docker engine suites (also waiting) are in `npm run test:long`. */
const WAITING = [
  'load', // 41, 20: the soak's pacing, the overload test's timeouts
  'scale-out', // 25, 13: leases expiring, PostgreSQL
  'scale-out-jobs', // 24, 11
  'shared-store', // 24, 6
  'console', // 24, 13: Chromium
  'seed-004', // 18, 10: reloads, streaming
  'jobs-api', // 18, 15: uploads streamed while other clients are answered
  'clients', // 17, 12: the Python client's interpreter
  'http-runtime', // 16, 9: servers' health and timeouts
  'monitor', // 13, 8: alerts' windows
  'model-codon', // 12, 9: EMBOSS
  'fuzz-paths', // 11, 6
  'prometheus', // 9, 4: a real Prometheus scraping
  'console-weights', // 9, 5
  'scheduler', // 9, 5: timeouts, idle scale-down
  'storage-faults', // 9, 4
  'jobs-durability', // 9, 7: jobs resumed after SIGKILL
  'deployments', // 8, 6: rolling updates
  'batching', // 7, 4: batch windows
  'openai', // 6, 3
  'runner-unit', // 4, 1
].map((name) => `${name}.test.js`);

/** The busy files taking 15 s or more, longest first; every other file follows, by name. */
const BUSY_LONGEST_FIRST = [
  'docs-commands',
  'model-codon-transformer',
  'model-evo2',
  'fuzz',
  'model-dnabert2',
  'first-start',
  'cli-typed',
  'cli-newcomer',
  'model-dnabert2-onnx',
  'worker-isolation',
  'cli',
  'envs',
].map((name) => `${name}.test.js`);

const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error(`TEST_CONCURRENCY must be a positive integer, not ${process.env.TEST_CONCURRENCY}`);
  process.exit(2);
}
const separate = process.env.TEST_WAITING_POOL !== '0';

const files = readdirSync(TEST_DIR)
  .filter((f) => f.endsWith('.test.js'))
  .sort();
const byRank = (list) => {
  const rank = (f) => (list.includes(f) ? list.indexOf(f) : list.length);
  return (a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
};
const waiting = separate ? files.filter((f) => WAITING.includes(f)).sort(byRank(WAITING)) : [];
const busy = files.filter((f) => !waiting.includes(f)).sort(byRank([...BUSY_LONGEST_FIRST, ...WAITING]));

const reporter = () => (process.stdout.isTTY ? new spec() : tap);

/** Runs one pool; resolves with whether all its tests passed, once its report is written to `out`. */
function pool(list, size, out) {
  return new Promise((resolve) => {
    let ok = true;
    // run() keeps the order given (`node --test a b c` would sort the files by name).
    const stream = run({ files: list.map((f) => join(TEST_DIR, f)), concurrency: size });
    stream.on('test:fail', () => {
      ok = false;
    });
    const report = stream.compose(reporter());
    report.pipe(out, { end: false });
    report.on('end', () => resolve(ok));
  });
}

const held = [];
const waitingOut = new PassThrough();
waitingOut.on('data', (chunk) => held.push(chunk));

const [busyOk, waitingOk] = await Promise.all([
  pool(busy, concurrency, process.stdout),
  waiting.length ? pool(waiting, 1, waitingOut) : Promise.resolve(true),
]);
if (waiting.length) {
  process.stdout.write(`\n# the files that mostly wait, run one at a time beside the others: ${waiting.join(', ')}\n`);
  process.stdout.write(Buffer.concat(held));
}
if (!busyOk || !waitingOk) process.exitCode = 1;
