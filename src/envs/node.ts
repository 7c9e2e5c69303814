// Node environments: a package.json with dependencies gets its own node_modules under
// <work_dir>/envs/node/<model>-<sha256(package.json + lock + Node ABI)[:16]>/node_modules, made
// by `npm install` in that directory. The package folder itself is never written to: the worker
// finds the modules through the resolve hook (src/worker/sdk-hooks.ts, ISOMODEL_NODE_MODULES).
import { existsSync, lchownSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { ModelPackage } from '../manifest/load.js';
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

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [k: string]: unknown;
}

const DEP_FIELDS = ['dependencies', 'optionalDependencies'] as const;

/**
 * A local dependency (`file:../x.tgz`, `./dir`) names a path relative to the package; the env is
 * installed elsewhere, so it is rewritten to an absolute `file:` spec. Returns the target path.
 */
function localTarget(spec: string, pkgDir: string): string | null {
  const rel = spec.startsWith('file:') ? spec.slice(5) : /^\.{1,2}\//.test(spec) ? spec : null;
  if (rel === null) return null;
  return isAbsolute(rel) ? rel : resolve(pkgDir, rel);
}

/** The node_modules a node / onnx package needs, or null when its package.json declares no dependencies. */
export function planNode(pkg: ModelPackage, settings: EnvSettings): EnvPlan | null {
  const m = pkg.manifest;
  if ((m.runtime !== 'node' && m.runtime !== 'onnx') || m.environment === false) return null;
  const file = join(pkg.dir, 'package.json');
  if (!existsSync(file)) return null;
  let json: PackageJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
  } catch (e) {
    throw new EnvBuildError(`package.json of ${m.name} is not valid JSON`, (e as Error).message);
  }
  const names: string[] = [];
  const locals: string[] = [];
  for (const field of DEP_FIELDS) {
    const deps = json[field];
    if (!deps || typeof deps !== 'object') continue;
    for (const [name, spec] of Object.entries(deps)) {
      names.push(`${name}@${spec}`);
      const target = localTarget(spec, pkg.dir);
      if (target !== null) {
        deps[name] = `file:${target}`;
        locals.push(target);
      }
    }
  }
  if (names.length === 0) return null;
  // Only what installs matters (no devDependencies, scripts); local targets by size and mtime,
  // so a rebuilt tarball at the same path makes a new env.
  const installed: PackageJson = {
    name: `isomodel-env-${m.name}`,
    version: '0.0.0',
    private: true,
    dependencies: json.dependencies,
    optionalDependencies: json.optionalDependencies,
  };
  if (json.overrides) installed.overrides = json.overrides;
  const text = JSON.stringify(installed, null, 2) + '\n';
  const lockFile = join(pkg.dir, 'package-lock.json');
  // A lock pins registry packages; with local paths rewritten it would point at the wrong place.
  const lock = locals.length === 0 && existsSync(lockFile) ? readFileSync(lockFile, 'utf8') : '';
  const localStats = locals.map((p) => {
    try {
      const s = statSync(p);
      return `${p}:${s.size}:${s.mtimeMs}`;
    } catch {
      return `${p}:missing`;
    }
  });
  const hash = shortHash(text, lock, `abi${process.versions.modules}`, ...localStats);
  const dir = envDir(settings, 'node', m.name, hash);
  return {
    kind: 'node',
    model: m.name,
    pkg,
    hash,
    dir,
    summary: names.join(', '),
    build: (plan, s, log) => buildNodeModules(plan, s, log, { text, lock, npmrc: join(pkg.dir, '.npmrc') }),
    result: { nodeModules: join(dir, 'node_modules'), dir },
  };
}

async function buildNodeModules(
  plan: EnvPlan,
  settings: EnvSettings,
  log: BuildLog,
  o: { text: string; lock: string; npmrc: string },
): Promise<void> {
  // The env dir may belong to the build user already: create, never follow what is there ('wx').
  const files: string[] = [];
  const put = (name: string, text: string): void => {
    writeFileSync(join(plan.dir, name), text, { flag: 'wx', mode: 0o644 });
    files.push(join(plan.dir, name));
  };
  put('package.json', o.text);
  if (o.lock) put('package-lock.json', o.lock);
  // The package's own npm settings (registry, scopes); kept 0600 once the env is sealed.
  if (existsSync(o.npmrc)) put('.npmrc', readFileSync(o.npmrc, 'utf8'));
  // npm (as the build user) rewrites the lock file.
  if (settings.runAs) for (const f of files) lchownSync(f, settings.runAs.identity.uid, settings.runAs.identity.gid);
  log.write(`# node env for ${plan.model}: ${plan.summary}`);
  await runStep(log, 'npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--no-update-notifier'], {
    cwd: plan.dir,
    env: toolEnv({ npm_config_update_notifier: 'false', npm_config_loglevel: 'warn' }),
    timeoutMs: buildTimeoutMs(settings),
    what: 'npm install',
    // Install scripts of dependencies the package names run as the build user, not root.
    runAs: settings.runAs,
    home: buildHome(plan.dir),
  });
  if (!existsSync(join(plan.dir, 'node_modules')))
    throw new EnvBuildError('npm install left no node_modules', log.tail());
}
