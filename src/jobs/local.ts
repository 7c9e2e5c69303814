// Offline execution for the CLI (`isomodel batch` / `pipeline run` without a gateway): the
// models a job needs, started here as deployments with exactly N replicas each, through the
// scaling override of ModelDeployment (the packages on disk are untouched). Only those models
// start, not every package of the models dir.
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { createWorkerFactory, driverContext, type WorkerFactory } from '../drivers/factory.js';
import { IsoError } from '../errors.js';
import { discoverPackages, isValidModelName, type ModelPackage } from '../manifest/load.js';
import type { Manifest } from '../manifest/schema.js';
import { ModelDeployment } from '../scheduler/deployment.js';
import { deploymentSubmit, type ModelExecutor } from './work.js';

export class LocalModels implements ModelExecutor {
  private readonly packages = new Map<string, ModelPackage>();
  private readonly broken = new Map<string, string>();
  private readonly deployments = new Map<string, ModelDeployment>();
  private readonly factory: WorkerFactory;

  constructor(
    config: Config,
    private readonly logger: Logger,
  ) {
    const found = discoverPackages(config.models_dir);
    for (const p of found.packages) this.packages.set(p.manifest.name, p);
    for (const e of found.errors)
      this.broken.set(
        e.file
          .replace(/\/model\.yaml$/, '')
          .split('/')
          .pop() ?? e.file,
        e.message,
      );
    // The same drivers as the gateway's: worker_user, work_dir, inline_models and the rest.
    this.factory = createWorkerFactory(driverContext(config, logger));
  }

  manifest(model: string): Manifest {
    const p = this.packages.get(model);
    if (p) return p.manifest;
    const broken = this.broken.get(model);
    if (broken) throw new IsoError('MODEL_NOT_FOUND', `model ${model} has an invalid package: ${broken}`);
    throw new IsoError('MODEL_NOT_FOUND', `no model named "${isValidModelName(model) ? model : model.slice(0, 80)}"`, {
      available: [...this.packages.keys()].sort(),
    });
  }

  /** Starts each model with exactly `replicas` workers; resolves when all are ready. */
  async start(models: string[], replicas: number): Promise<void> {
    const wanted = [...new Set(models)].filter((m) => !this.deployments.has(m));
    await Promise.all(
      wanted.map(async (name) => {
        this.manifest(name);
        const pkg = this.packages.get(name)!;
        const d = new ModelDeployment(pkg, this.factory, this.logger, undefined, {
          scaling: { min_replicas: replicas, max_replicas: replicas, idle_timeout_s: 0 },
        });
        this.deployments.set(name, d);
        await d.start();
      }),
    );
  }

  submit(model: string, req: Parameters<ModelExecutor['submit']>[1]): ReturnType<ModelExecutor['submit']> {
    const d = this.deployments.get(model);
    if (!d) return Promise.reject(new IsoError('MODEL_NOT_FOUND', `model ${model} was not started`));
    return deploymentSubmit(d, req);
  }

  async close(): Promise<void> {
    await Promise.all([...this.deployments.values()].map((d) => d.stop(2000)));
    this.deployments.clear();
  }
}
