// A process worker that first builds or reuses its model's environment (index.ts), then starts
// on it: runtime python on the venv's interpreter, runtime node / onnx with the env's
// node_modules (resolved by the hook in src/worker/sdk-hooks.ts). A build failure rejects start()
// with MODEL_NOT_LOADED, so the deployment, and the model, fail with pip's / npm's error.
import { join } from 'node:path';
import { IsoError } from '../errors.js';
import { ProcessWorker, type ProcessWorkerOptions } from '../drivers/process.js';
import { ensureEnv, type EnvSettings } from './index.js';

export class EnvProcessWorker extends ProcessWorker {
  private readonly workerOpts: ProcessWorkerOptions;

  constructor(
    opts: ProcessWorkerOptions,
    private readonly envSettings: EnvSettings,
  ) {
    // The options object stays shared with ProcessWorker, which reads pkg / extraEnv at spawn time.
    super(opts);
    this.workerOpts = opts;
  }

  override async start(): Promise<void> {
    const o = this.workerOpts;
    // As root: built by the worker user, from an interpreter it can run (drivers/privilege.ts).
    await this.resolveInterpreters();
    const env = await ensureEnv(
      o.pkg,
      { ...this.envSettings, python: o.python, runAs: this.privileges() ?? undefined },
      { logger: o.logger },
    );
    if (this.stopWasRequested)
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `model ${o.pkg.manifest.name} was stopped while its environment was being built`,
      );
    if (env.python) {
      // The venv's interpreter replaces the manifest's / config's (it was created from it).
      o.pkg = { ...o.pkg, manifest: { ...o.pkg.manifest, python: env.python } };
      o.extraEnv = {
        VIRTUAL_ENV: env.dir!,
        PATH: `${join(env.dir!, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        ...o.extraEnv,
      };
    }
    if (env.nodeModules) {
      // ESM: the resolve hook reads ISOMODEL_NODE_MODULES; NODE_PATH covers require() from CommonJS.
      o.extraEnv = { ISOMODEL_NODE_MODULES: env.nodeModules, NODE_PATH: env.nodeModules, ...o.extraEnv };
    }
    return super.start();
  }
}
