// Whether a Python has the modules a test needs, looked up without importing them: importing
// torch costs about 1.5 s of CPU, and each torch test file used to pay it once just to ask.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const FIND = [
  'import importlib.util, sys',
  'missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]',
  'print(" ".join(missing))',
  'sys.exit(1 if missing else 0)',
].join('\n');

/** Null when `python` runs and has every module installed; else why not, naming what is missing. */
export function missingPythonModules(python: string, modules: string[]): string | null {
  const r = spawnSync(python, ['-c', FIND, ...modules], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${python} could not run: ${r.error.message}`;
  if (r.status === 0) return null;
  const missing = r.stdout.trim();
  if (missing) return `${python} cannot import ${missing.split(' ').join(', ')}`;
  return `${python} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').pop() ?? ''}`;
}

/** Fails (never skips: CI must install them) when `python` lacks a module; `install` says how. */
export function requirePythonModules(python: string, modules: string[], install: string): void {
  const missing = missingPythonModules(python, modules);
  if (missing) assert.fail(`${missing}: ${install}`);
}
