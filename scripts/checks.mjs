#!/usr/bin/env node
// `npm test`'s first step: the build (tsc, which is the typecheck), ESLint and Prettier's check, run
// side by side (they read the sources, not each other's output), each one's output printed whole
// when it ends. Fails if any of them fails (all of them still run). tsc is incremental (its state in
// dist/.tsbuildinfo, gone with dist/) and Prettier caches its verdicts by content, so a second run
// redoes only what changed; ESLint always lints everything (its type-aware rules see across files).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(ROOT, 'node_modules', '.bin', name);

// Two lanes for two cores: tsc then Prettier beside ESLint (each takes about a core; a third
// process at once only slowed all three).
const LANES = [
  [
    { name: 'build (tsc)', command: bin('tsc'), args: ['-p', 'tsconfig.json'] },
    { name: 'prettier --check', command: bin('prettier'), args: ['--check', '--cache', '.'] },
  ],
  [{ name: 'eslint', command: bin('eslint'), args: ['.'] }],
];

function runStep({ name, command, args }) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    child.on('error', (e) => {
      out.push(Buffer.from(`${e.message}\n`));
    });
    child.on('close', (code, signal) => {
      const ok = code === 0;
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      process.stdout.write(`> ${name}: ${ok ? 'ok' : `failed (${signal ?? `exit ${code}`})`} in ${seconds} s\n`);
      process.stdout.write(Buffer.concat(out));
      resolve(ok);
    });
  });
}

async function runLane(steps) {
  let ok = true;
  for (const step of steps) ok = (await runStep(step)) && ok;
  return ok;
}

const results = await Promise.all(LANES.map(runLane));
if (!results.every(Boolean)) process.exit(1);
