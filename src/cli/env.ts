// `isomodel env build|ls|prune`: the per-model environments (src/envs, docs/environments.md)
// under the work dir, without a gateway. A running gateway reuses what `env build` made.
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import { ensureEnv, listEnvs, planEnv, pruneEnvs, type EnvSettings } from '../envs/index.js';
import { discoverPackages, type ModelPackage } from '../manifest/load.js';
import { planPrivileges, workerPython } from '../drivers/privilege.js';
import { defaultWorkDir } from '../drivers/workspace.js';
import { table } from './table.js';

export function envSettings(config: Config): EnvSettings {
  return { ...config.envs, workDir: config.work_dir ?? defaultWorkDir(config.state_dir), python: config.python };
}

/**
 * envSettings with the interpreter a gateway of this config builds venvs from: as root, one the
 * worker user can run (drivers/privilege.ts), so `env build` makes the envs `serve` will use.
 */
export async function workerEnvSettings(config: Config): Promise<EnvSettings> {
  const settings = envSettings(config);
  const plan = planPrivileges(config.worker_user);
  if ('error' in plan) throw new Error(plan.error);
  if (plan.drop) {
    settings.python = await workerPython(config.python, plan.drop, { fallback: true });
    settings.runAs = plan.drop; // builds run as the worker user, as the gateway's do
  }
  return settings;
}

function packages(config: Config): ModelPackage[] {
  const found = discoverPackages(config.models_dir);
  for (const e of found.errors) process.stderr.write(`invalid package: ${e.message}\n`);
  return found.packages;
}

export type EnvBuildRow = {
  model: string;
  status: 'built' | 'reused' | 'none' | 'failed';
  dir?: string;
  ms: number;
  error?: string;
};

/** Builds (or reuses) the envs of the named models, or of every package; one row each. */
export async function envBuild(
  config: Config,
  models: string[],
  opts: { force?: boolean } = {},
): Promise<EnvBuildRow[]> {
  const all = packages(config);
  const unknown = models.filter((m) => !all.some((p) => p.manifest.name === m));
  if (unknown.length) throw new Error(`no model named ${unknown.join(', ')} in ${config.models_dir}`);
  const chosen = models.length ? all.filter((p) => models.includes(p.manifest.name)) : all;
  const settings = { ...(await workerEnvSettings(config)), enabled: true };
  const rows: EnvBuildRow[] = [];
  // One at a time: builds are CPU- and network-heavy.
  for (const pkg of chosen) {
    const t0 = Date.now();
    try {
      if (!(await planEnv(pkg, settings))) {
        rows.push({ model: pkg.manifest.name, status: 'none', ms: 0 });
        continue;
      }
      const r = await ensureEnv(pkg, settings, { force: opts.force });
      rows.push({ model: pkg.manifest.name, status: r.built ? 'built' : 'reused', dir: r.dir, ms: Date.now() - t0 });
    } catch (e) {
      rows.push({ model: pkg.manifest.name, status: 'failed', ms: Date.now() - t0, error: (e as Error).message });
    }
  }
  return rows;
}

export function envCommand(config: () => Config): Command {
  const env = new Command('env').description(
    'per-model environments: Python venvs and node_modules (docs/environments.md)',
  );
  env
    .command('build')
    .argument('[models...]', 'models to build (default: every package with dependencies)')
    .option('-f, --force', 'rebuild even when a complete env exists')
    .option('--json', 'print JSON')
    .description('build or reuse the environments of the models dir packages')
    .action(async (models: string[], opts: { force?: boolean; json?: boolean }) => {
      const rows = await envBuild(config(), models, opts);
      if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else {
        process.stdout.write(table(rows, ['model', 'status', 'ms', 'dir']) + '\n');
        for (const r of rows) if (r.error) process.stderr.write(`${r.model}: ${r.error}\n`);
      }
      if (rows.some((r) => r.status === 'failed')) process.exitCode = 1;
    });
  env
    .command('ls')
    .option('--json', 'print JSON')
    .description('list the environments in the work dir and whether a current package uses them')
    .action(async (opts: { json?: boolean }) => {
      const c = config();
      const rows = await listEnvs(await workerEnvSettings(c), packages(c));
      if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else
        process.stdout.write(
          table(
            rows.map((r) => ({ ...r, in_use: r.in_use ? 'yes' : 'no' })),
            ['kind', 'model', 'hash', 'state', 'in_use', 'built_at', 'summary'],
          ) + '\n',
        );
    });
  env
    .command('prune')
    .option('-n, --dry-run', 'only list what would be removed')
    .option('--json', 'print JSON')
    .description('remove environments no current package uses, and failed or interrupted builds')
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      const c = config();
      const removed = await pruneEnvs(await workerEnvSettings(c), packages(c), { dryRun: opts.dryRun });
      if (opts.json) process.stdout.write(JSON.stringify(removed, null, 2) + '\n');
      else {
        for (const r of removed) process.stdout.write(`${opts.dryRun ? 'would remove' : 'removed'} ${r.dir}\n`);
        process.stdout.write(`${removed.length} environment(s) ${opts.dryRun ? 'to remove' : 'removed'}\n`);
      }
    });
  return env;
}
