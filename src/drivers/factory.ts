// Picks the isolation driver a manifest asks for.
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import type { WorkerLogOptions } from '../worker/log-limiter.js';
import type { WorkerHandle } from '../worker/types.js';
import { CgroupManager } from './cgroups.js';
import { InlineWorker } from './inline.js';
import { ProcessWorker, type ProcessWorkerOptions } from './process.js';
import { EnvProcessWorker } from '../envs/worker.js';
import type { Config } from '../config/config.js';
import { dropArgs, planPrivileges, type PrivilegePlan } from './privilege.js';
import { gatewayTag, stateTag, tagAlive } from './reap.js';
import { sandboxCommand } from './sandbox.js';
import { DockerWorker, dockerEngine } from './docker.js';
import { defaultWorkDir, removeStaleScratch, tidyWorkDir } from './workspace.js';
import { pullSettings, pulledWeightsEnv } from '../pull/pull.js';
import { operatorWeightsPath } from '../manifest/weights.js';

export interface DriverContext {
  python: string;
  stateDir: string;
  /** Where scratch dirs and per-model envs live (config work_dir); default `<stateDir>-work`. */
  workDir?: string;
  cgroups: CgroupManager;
  logger: Logger;
  /** Operator-set environment per model name (config model_env). */
  modelEnv?: Record<string, Record<string, string>>;
  /**
   * Environment from pulled weights (src/pull: `{<weights.env>: <folder>}`), read at each spawn so
   * a pull takes effect at the next start; config model_env still wins over it.
   */
  weightsEnv?: (pkg: ModelPackage) => Record<string, string> | undefined;
  /** Per-model environments (config `envs`, src/envs); absent: enabled, no package source configured. */
  envs?: Config['envs'];
  /** The engine for isolation docker (config `docker`); absent: /var/run/docker.sock, build on first use. */
  docker?: Config['docker'];
  /** Each replica's stderr limits and drop counters, per model (config `worker_log`, worker/log-limiter.ts). */
  workerLog?: (model: string) => WorkerLogOptions;
  /** Config worker_user: whom process and sandbox workers run as when the gateway is root (default nobody). */
  workerUser?: string;
  /** Config inline_models: the only models that may run with isolation inline (default: none). */
  inlineModels?: string[];
  /** Config host_network_models: the only models that may ask for network: host (default: none). */
  hostNetworkModels?: string[];
}

/** The driver context a configuration describes (gateway, `isomodel batch`, `isomodel predict`). */
export function driverContext(config: Config, logger: Logger, cgroups?: CgroupManager): DriverContext {
  return {
    python: config.python,
    stateDir: config.state_dir,
    workDir: config.work_dir,
    cgroups: cgroups ?? (config.cgroups ? CgroupManager.detect() : CgroupManager.disabled()),
    logger,
    modelEnv: config.model_env,
    weightsEnv: (pkg) => pulledWeightsEnv(pullSettings(config).weightsDir, pkg.manifest),
    envs: config.envs, // per-model venvs / node_modules (src/envs)
    docker: config.docker, // isolation docker: the engine's socket, image builds
    workerUser: config.worker_user,
    inlineModels: config.inline_models,
    hostNetworkModels: config.host_network_models,
  };
}

/**
 * At start: what an earlier gateway of this state dir left when it died without closing
 * (SIGKILL, crash) goes: its replicas' cgroups, with anything still running in them, and its
 * scratch dirs. A live gateway's (an `isomodel batch` beside `serve`) are left alone.
 */
export async function reapLeftovers(ctx: DriverContext): Promise<{ cgroups: string[]; scratch: string[] }> {
  const cgroups = await ctx.cgroups.reapStale(stateTag(ctx.stateDir), tagAlive);
  const plan = planPrivileges(ctx.workerUser);
  const scratch = await removeStaleScratch(
    ctx.workDir ?? defaultWorkDir(ctx.stateDir),
    'drop' in plan ? plan.drop : null,
  );
  if (cgroups.length || scratch.length)
    ctx.logger.info({ cgroups, scratch }, 'removed what an earlier gateway of this state dir left behind');
  return { cgroups, scratch };
}

/** On close: this gateway's empty scratch levels (and the work dir, when nothing is left in it). */
export function tidyWorkDirOnClose(ctx: DriverContext): void {
  tidyWorkDir(ctx.workDir ?? defaultWorkDir(ctx.stateDir), gatewayTag());
}

export type WorkerFactory = (pkg: ModelPackage, replicaId: string) => WorkerHandle;

/** Refuses inline isolation for a model the operator did not list in inline_models. */
class RefusedInlineWorker extends InlineWorker {
  override start(): Promise<void> {
    this.markExited();
    const name = this.pkg.manifest.name;
    return Promise.reject(
      new IsoError(
        'MODEL_NOT_LOADED',
        `model ${name} asks for isolation inline, which runs its code inside the gateway process with all of the gateway's rights; only models listed in the config's inline_models may. Add ${name} to inline_models if you trust it, or set isolation: process in its model.yaml`,
      ),
    );
  }
}

export function createWorkerFactory(ctx: DriverContext): WorkerFactory {
  const workDir = ctx.workDir ?? defaultWorkDir(ctx.stateDir);
  // Resolved once: the worker user, setpriv, unshare (or why workers cannot start as root).
  let privileges: PrivilegePlan | undefined;
  const plan = (): PrivilegePlan => {
    if (!privileges) {
      privileges = planPrivileges(ctx.workerUser);
      if ('why' in privileges && privileges.why) ctx.logger.warn(privileges.why);
    }
    return privileges;
  };
  const owner = { state: stateTag(ctx.stateDir), gateway: gatewayTag() };
  const inline = new Set(ctx.inlineModels ?? []);
  const hostNetwork = new Set(ctx.hostNetworkModels ?? []);
  const extraEnvOf = (pkg: ModelPackage): Record<string, string> | undefined => {
    const pulled = ctx.weightsEnv?.(pkg);
    const operator = ctx.modelEnv?.[pkg.manifest.name];
    return pulled || operator ? { ...pulled, ...operator } : undefined;
  };
  // What the process and sandbox drivers share: the worker's options and the env it runs in.
  const processOptions = (
    pkg: ModelPackage,
    id: string,
    workerLog: ProcessWorkerOptions['workerLog'],
  ): ProcessWorkerOptions => ({
    id,
    pkg,
    python: ctx.python,
    workDir,
    cgroups: ctx.cgroups,
    logger: ctx.logger,
    extraEnv: extraEnvOf(pkg),
    privileges: plan(),
    owner,
    workerLog,
  });
  // Builds or reuses the model's venv / node_modules before spawning (src/envs).
  const processWorker = (opts: ProcessWorkerOptions): ProcessWorker =>
    ctx.envs?.enabled === false
      ? new ProcessWorker(opts)
      : new EnvProcessWorker(opts, { ...ctx.envs, workDir, python: ctx.python });
  return (pkg, id) => {
    const workerLog = ctx.workerLog?.(pkg.manifest.name);
    switch (pkg.manifest.isolation) {
      case 'inline':
        return inline.has(pkg.manifest.name) ? new InlineWorker(id, pkg) : new RefusedInlineWorker(id, pkg);
      case 'process':
        return processWorker({
          ...processOptions(pkg, id, workerLog),
          hostNetworkAllowed: hostNetwork.has(pkg.manifest.name),
        });
      case 'sandbox': {
        // The process driver, with its command run inside bubblewrap (drivers/sandbox.ts). The
        // wrap reads opts at spawn time: EnvProcessWorker has by then pointed them at the
        // model's venv / node_modules, which the sandbox binds read-only. As root, bwrap itself
        // runs as the worker user (unprivileged user namespaces).
        const opts: ProcessWorkerOptions = {
          ...processOptions(pkg, id, workerLog),
          wrap: (cmd, scratch, drop) =>
            sandboxCommand(cmd, {
              pkg: opts.pkg,
              scratch,
              // The venv / node_modules, and the weights folder the operator set or a pull filled.
              readOnly: [
                opts.extraEnv?.VIRTUAL_ENV,
                opts.extraEnv?.ISOMODEL_NODE_MODULES,
                operatorWeightsPath(opts.pkg.manifest, opts.extraEnv) ?? undefined,
              ],
              runAs: drop ? dropArgs(drop) : [],
            }),
        };
        return processWorker(opts);
      }
      case 'docker': {
        // A container of the model's image, built on first use (drivers/docker.ts, docs/docker.md).
        const settings = {
          socket: ctx.docker?.socket ?? '/var/run/docker.sock',
          build: ctx.docker?.build ?? true,
          build_timeout_s: ctx.docker?.build_timeout_s ?? 600,
        };
        return new DockerWorker({
          id,
          pkg,
          engine: dockerEngine(settings.socket),
          settings,
          stateDir: ctx.stateDir,
          logger: ctx.logger,
          extraEnv: extraEnvOf(pkg),
          workerLog,
        });
      }
    }
  };
}
