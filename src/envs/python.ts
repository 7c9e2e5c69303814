// Python environments: one venv per model and requirements, under
// <work_dir>/envs/python/<model>-<sha256(requirements + interpreter)[:16]>/, filled by pip from a
// local wheel folder (--no-index --find-links) or a configured index.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { devNull } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { ModelPackage } from '../manifest/load.js';
import { accessProblem, dropArgs, type Privileges } from '../drivers/privilege.js';
import {
  buildHome,
  buildTimeoutMs,
  envDir,
  runStep,
  shortHash,
  toolEnv,
  EnvBuildError,
  type BuildLog,
  type EnvPlan,
  type EnvSettings,
} from './build.js';

interface Interpreter {
  /** Real path of sys.executable. */
  exe: string;
  version: string;
  /** pip >= 22.3 in the base interpreter: it can fill a pip-less venv (`pip --python`). */
  pipPython: boolean;
}

const PROBE = [
  'import os, sys',
  'print(os.path.realpath(sys.executable))',
  'print(sys.version.replace("\\n", " "))',
  'try:',
  '    import pip',
  '    print(pip.__version__)',
  'except Exception:',
  '    print("")',
].join('\n');

const probes = new Map<string, Promise<Interpreter>>();

/**
 * Identity of an interpreter (cached per process): part of the env hash. Run as the build user
 * when there is one: a manifest may name the interpreter.
 */
export function probeInterpreter(python: string, runAs?: Privileges): Promise<Interpreter> {
  const key = `${runAs ? runAs.identity.uid : ''}\0${python}`;
  let p = probes.get(key);
  if (!p) {
    const argv = [...(runAs ? dropArgs(runAs) : []), python, '-c', PROBE];
    p = new Promise<Interpreter>((res, rej) => {
      execFile(
        argv[0]!,
        argv.slice(1),
        { timeout: 30_000, env: toolEnv({ HOME: '/' }), cwd: '/' },
        (err, stdout, stderr) => {
          if (err)
            return rej(
              new EnvBuildError(
                `python interpreter "${python}" is not usable`,
                (stderr || err.message).trim().slice(-500),
              ),
            );
          const [exe = python, version = '', pipVersion = ''] = stdout.split('\n').map((l) => l.trim());
          const [major = 0, minor = 0] = pipVersion.split('.').map(Number);
          res({ exe, version, pipPython: major > 22 || (major === 22 && minor >= 3) });
        },
      );
    });
    p.catch(() => probes.delete(key));
    probes.set(key, p);
  }
  return p;
}

/** Requirement lines that install something (comments, blanks and pip options alone install nothing). */
export function effectiveRequirements(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter(
      (l) =>
        l !== '' &&
        !/^--?(index-url|extra-index-url|find-links|no-index|trusted-host|pre|prefer-binary|only-binary|no-binary|i|f)\b/.test(
          l,
        ),
    );
}

function packagePath(pkg: ModelPackage, p: string): string {
  return isAbsolute(p) ? p : join(pkg.dir, p);
}

/**
 * The venv a python package needs, or null when it runs on its interpreter as-is: no
 * requirements file, one that installs nothing, `environment: false`, or an explicit `python`
 * without an `environment` block (an interpreter the operator prepared, e.g. Debian's torch).
 */
export async function planPython(pkg: ModelPackage, settings: EnvSettings): Promise<EnvPlan | null> {
  const m = pkg.manifest;
  if (m.runtime !== 'python' || m.environment === false) return null;
  if (m.environment === undefined && m.python !== undefined) return null;
  const reqRel = m.environment?.requirements ?? 'requirements.txt';
  const reqFile = packagePath(pkg, reqRel);
  if (!existsSync(reqFile)) {
    if (m.environment !== undefined && m.environment.requirements !== 'requirements.txt')
      throw new EnvBuildError(`environment.requirements: ${reqRel} not found in the package`, '');
    return null;
  }
  const text = readFileSync(reqFile, 'utf8');
  const reqs = effectiveRequirements(text);
  if (reqs.length === 0) return null;
  const base = m.python ?? settings.python;
  const interp = await probeInterpreter(base, settings.runAs);
  const sitePackages = m.environment?.system_site_packages ?? false;
  const hash = shortHash(text, interp.exe, interp.version, sitePackages ? 'system-site-packages' : '');
  const dir = envDir(settings, 'python', m.name, hash);
  return {
    kind: 'python',
    model: m.name,
    pkg,
    hash,
    dir,
    summary: reqs.join(', '),
    build: (plan, s, log) => buildVenv(plan, s, log, { base, interp, reqFile, sitePackages }),
    result: { python: join(dir, 'bin', 'python'), dir },
  };
}

/** pip's package source: local wheels (offline) first, else the configured index. */
export function pipSource(pkg: ModelPackage, settings: EnvSettings): string[] | null {
  const wheelDirs: string[] = [];
  const m = pkg.manifest;
  if (m.environment && m.environment.wheels) wheelDirs.push(packagePath(pkg, m.environment.wheels));
  if (settings.wheel_dir) wheelDirs.push(resolve(settings.wheel_dir));
  if (wheelDirs.length > 0) return ['--no-index', ...wheelDirs.flatMap((d) => ['--find-links', d])];
  if (settings.index_url) return ['--index-url', settings.index_url];
  return null;
}

async function buildVenv(
  plan: EnvPlan,
  settings: EnvSettings,
  log: BuildLog,
  o: { base: string; interp: Interpreter; reqFile: string; sitePackages: boolean },
): Promise<void> {
  const source = pipSource(plan.pkg, settings);
  if (!source) {
    throw new EnvBuildError(
      `model ${plan.model} needs Python packages (${plan.summary}) but no package source is configured: set envs.wheel_dir or envs.index_url in the config, or environment.wheels in model.yaml`,
      '',
    );
  }
  const runAs = settings.runAs;
  if (runAs && source[0] === '--no-index') {
    for (let i = 1; i < source.length; i += 2) {
      const problem = accessProblem(source[i + 1]!, runAs.identity, 'rx');
      if (problem)
        throw new EnvBuildError(
          `the wheel folder ${source[i + 1]} cannot be read by ${runAs.identity.name} (uid ${runAs.identity.uid}), who builds environments: ${problem}`,
          '',
        );
    }
  }
  const timeoutMs = buildTimeoutMs(settings);
  // Local wheels: hermetic, pip's config files and PIP_* variables (other indexes, find-links,
  // constraints) stay out. An index: the operator's pip configuration (certificates, proxies) applies.
  const hermetic = source[0] === '--no-index';
  const env = toolEnv({ PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONDONTWRITEBYTECODE: '1' });
  if (hermetic) {
    for (const k of Object.keys(env)) if (k.startsWith('PIP_')) delete env[k];
    env.PIP_CONFIG_FILE = devNull;
  }
  const step = { cwd: plan.pkg.dir, env, timeoutMs, runAs, home: buildHome(plan.dir) };
  const venvPython = join(plan.dir, 'bin', 'python');
  const site = o.sitePackages ? ['--system-site-packages'] : [];
  const pipArgs = ['install', '--no-input', '--disable-pip-version-check', ...source, '-r', o.reqFile];
  log.write(`# python env for ${plan.model}: ${o.interp.exe} (${o.interp.version}); requirements ${o.reqFile}`);
  if (o.interp.pipPython) {
    // Fast path: a pip-less venv filled by the base interpreter's pip (seeding pip into every
    // venv with ensurepip costs 10-20 s of CPU).
    await runStep(log, o.base, ['-m', 'venv', '--without-pip', ...site, plan.dir], { ...step, what: 'python -m venv' });
    await runStep(log, o.base, ['-m', 'pip', '--python', venvPython, ...pipArgs], { ...step, what: 'pip install' });
  } else {
    await runStep(log, o.base, ['-m', 'venv', ...site, plan.dir], { ...step, what: 'python -m venv' });
    await runStep(log, venvPython, ['-m', 'pip', ...pipArgs], { ...step, what: 'pip install' });
  }
}
