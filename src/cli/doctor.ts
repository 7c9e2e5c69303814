// `isomodel doctor`: what this machine can run, and what is missing.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { CgroupManager } from '../drivers/cgroups.js';
import { discoverPackages } from '../manifest/load.js';

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
}

function version(cmd: string, args: string[] = ['--version']): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).trim().split('\n')[0] ?? '';
  } catch {
    return null;
  }
}

export function runDoctor(config: Config): Check[] {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: major >= 20, required: true, detail: `${process.version} (need >= 20)` });
  const py = version(config.python);
  checks.push({ name: 'python', ok: py !== null, required: true, detail: py ? `${config.python}: ${py}` : `${config.python} not found (needed for Python models)` });
  const cg = CgroupManager.detect();
  checks.push({ name: 'cgroups', ok: cg.version !== 'none', required: false, detail: cg.version === 'none' ? 'not writable: memory limits fall back to rlimits + RSS watchdog' : `${cg.version} writable: kernel-enforced memory/CPU limits` });
  for (const [tool, args] of [['docker', ['--version']], ['bwrap', ['--version']], ['promtool', ['--version']]] as const) {
    const v = version(tool, [...args]);
    checks.push({ name: tool, ok: v !== null, required: false, detail: v ?? 'not installed (optional)' });
  }
  try {
    mkdirSync(config.state_dir, { recursive: true });
    accessSync(config.state_dir, constants.W_OK);
    checks.push({ name: 'state dir', ok: true, required: true, detail: `${config.state_dir} writable` });
  } catch (e) {
    checks.push({ name: 'state dir', ok: false, required: true, detail: `${config.state_dir}: ${(e as Error).message}` });
  }
  const found = discoverPackages(config.models_dir);
  checks.push({ name: 'models', ok: found.errors.length === 0, required: false, detail: `${found.packages.length} valid in ${config.models_dir}${found.errors.length ? `; invalid: ${found.errors.map((e) => e.message).join(' | ')}` : ''}` });
  return checks;
}
