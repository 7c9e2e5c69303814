// Picks the isolation driver a manifest asks for.
import type { Logger } from 'pino';
import type { ModelPackage } from '../manifest/load.js';
import type { WorkerLogOptions } from '../worker/log-limiter.js';
import type { WorkerHandle } from '../worker/types.js';
import type { CgroupManager } from './cgroups.js';
import { InlineWorker } from './inline.js';
import { ProcessWorker, type ProcessWorkerOptions } from './process.js';
import { EnvProcessWorker } from '../envs/worker.js';
import type { Config } from '../config/config.js';
import { sandboxCommand } from './sandbox.js';
import { DockerWorker, dockerEngine } from './docker.js';

export interface DriverContext {
  python: string;
  stateDir: string;
  cgroups: CgroupManager;
  logger: Logger;
  /** Operator-set environment per model name (config model_env). */
  modelEnv?: Record<string, Record<string, string>>;
  /** Per-model environments (config `envs`, src/envs); absent: enabled, no package source configured. */
  envs?: Config['envs'];
  /** The engine for isolation docker (config `docker`); absent: /var/run/docker.sock, build on first use. */
  docker?: Config['docker'];
  /** Each replica's stderr limits and drop counters, per model (config `worker_log`, worker/log-limiter.ts). */
  workerLog?: (model: string) => WorkerLogOptions;
}

export type WorkerFactory = (pkg: ModelPackage, replicaId: string) => WorkerHandle;

export function createWorkerFactory(ctx: DriverContext): WorkerFactory {
  return (pkg, id) => {
    const workerLog = ctx.workerLog?.(pkg.manifest.name);
    switch (pkg.manifest.isolation) {
      case 'inline':
        return new InlineWorker(id, pkg);
      case 'process': {
        const opts = { id, pkg, python: ctx.python, stateDir: ctx.stateDir, cgroups: ctx.cgroups, logger: ctx.logger, extraEnv: ctx.modelEnv?.[pkg.manifest.name], workerLog };
        // Builds or reuses the model's venv / node_modules before spawning (src/envs).
        if (ctx.envs?.enabled === false) return new ProcessWorker(opts);
        return new EnvProcessWorker(opts, { ...ctx.envs, stateDir: ctx.stateDir, python: ctx.python });
      }
      case 'sandbox': {
        // The process driver, with its command run inside bubblewrap (drivers/sandbox.ts). The
        // wrap reads opts at spawn time: EnvProcessWorker has by then pointed them at the
        // model's venv / node_modules, which the sandbox binds read-only.
        const opts: ProcessWorkerOptions = {
          id,
          pkg,
          python: ctx.python,
          stateDir: ctx.stateDir,
          cgroups: ctx.cgroups,
          logger: ctx.logger,
          extraEnv: ctx.modelEnv?.[pkg.manifest.name],
          workerLog,
          wrap: (cmd, scratch) =>
            sandboxCommand(cmd, { pkg: opts.pkg, scratch, readOnly: [opts.extraEnv?.VIRTUAL_ENV, opts.extraEnv?.ISOMODEL_NODE_MODULES] }),
        };
        if (ctx.envs?.enabled === false) return new ProcessWorker(opts);
        return new EnvProcessWorker(opts, { ...ctx.envs, stateDir: ctx.stateDir, python: ctx.python });
      }
      case 'docker': {
        // A container of the model's image, built on first use (drivers/docker.ts, docs/docker.md).
        const settings = { socket: ctx.docker?.socket ?? '/var/run/docker.sock', build: ctx.docker?.build ?? true, build_timeout_s: ctx.docker?.build_timeout_s ?? 600 };
        return new DockerWorker({ id, pkg, engine: dockerEngine(settings.socket), settings, stateDir: ctx.stateDir, logger: ctx.logger, extraEnv: ctx.modelEnv?.[pkg.manifest.name], workerLog });
      }
    }
  };
}
