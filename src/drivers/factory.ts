// Picks the isolation driver a manifest asks for.
import type { Logger } from 'pino';
import type { ModelPackage } from '../manifest/load.js';
import type { WorkerHandle } from '../worker/types.js';
import type { CgroupManager } from './cgroups.js';
import { InlineWorker } from './inline.js';
import { ProcessWorker } from './process.js';

export interface DriverContext {
  python: string;
  stateDir: string;
  cgroups: CgroupManager;
  logger: Logger;
  /** Operator-set environment per model name (config model_env). */
  modelEnv?: Record<string, Record<string, string>>;
}

export type WorkerFactory = (pkg: ModelPackage, replicaId: string) => WorkerHandle;

export function createWorkerFactory(ctx: DriverContext): WorkerFactory {
  return (pkg, id) => {
    switch (pkg.manifest.isolation) {
      case 'inline':
        return new InlineWorker(id, pkg);
      case 'process':
        return new ProcessWorker({ id, pkg, python: ctx.python, stateDir: ctx.stateDir, cgroups: ctx.cgroups, logger: ctx.logger, extraEnv: ctx.modelEnv?.[pkg.manifest.name] });
    }
  };
}
