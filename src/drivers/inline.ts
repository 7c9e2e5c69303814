// Inline isolation: a trusted Node model runs inside the gateway process. No process
// boundary, so no crash containment and no hard timeout: for small, trusted, pure-JS models,
// and only those the operator lists in config inline_models (drivers/factory.ts).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import { loadNodeModel, ModelError, type NodeModel } from '../worker/node-model.js';
import { installSdkResolver } from '../worker/sdk-resolver.js';
import type { ItemOutput } from '../worker/protocol.js';
import type { ExitInfo, PredictCall, WorkerHandle, WorkerState, WorkerStats } from '../worker/types.js';

export class InlineWorker implements WorkerHandle {
  private model: NodeModel | null = null;
  private _state: WorkerState = 'starting';
  private readonly exitCbs: ((i: ExitInfo) => void)[] = [];
  private readonly idleCbs: (() => void)[] = [];

  constructor(
    readonly id: string,
    protected readonly pkg: ModelPackage,
  ) {}

  /** A start that will not happen (factory.ts refuses models not in inline_models). */
  protected markExited(): void {
    this._state = 'exited';
  }

  get state(): WorkerState {
    return this._state;
  }
  get pid(): number {
    return process.pid;
  }

  async start(): Promise<void> {
    const m = this.pkg.manifest;
    const entry = join(this.pkg.dir, m.entry as string);
    installSdkResolver();
    try {
      // The query string defeats the ESM cache so a hot reload really loads the new code.
      const model = await loadNodeModel(`${pathToFileURL(entry).href}?v=${this.pkg.fingerprint}`);
      await model.setup?.({
        name: m.name,
        version: m.version,
        modelDir: this.pkg.dir,
        dataDir: join(this.pkg.dir, m.data_dir),
        replicaId: this.id,
        env: { ...m.env },
      });
      this.model = model;
      this._state = 'idle';
    } catch (e) {
      this._state = 'exited';
      throw new IsoError('MODEL_NOT_LOADED', `inline model failed to load: ${(e as Error).message}`);
    }
  }

  async predict(call: PredictCall): Promise<ItemOutput[]> {
    if (!this.model || this._state !== 'idle')
      throw new IsoError('INTERNAL_ERROR', `inline worker ${this.id} is ${this._state}`);
    this._state = 'busy';
    try {
      const out =
        call.stream && this.model.stream
          ? await this.model.stream(call.items, call.task, (i, d) => call.onChunk?.(i, d))
          : await this.model.predict(call.items, call.task);
      if (!Array.isArray(out) || out.length !== call.items.length) {
        throw new IsoError(
          'PREDICTION_FAILED',
          `model returned ${Array.isArray(out) ? out.length : typeof out} outputs for a batch of ${call.items.length}`,
        );
      }
      return out;
    } catch (e) {
      if (e instanceof IsoError) throw e;
      if (e instanceof ModelError)
        throw new IsoError(e.code === 'INVALID_REQUEST' ? 'INVALID_REQUEST' : 'PREDICTION_FAILED', e.message);
      throw new IsoError('PREDICTION_FAILED', (e as Error).message);
    } finally {
      if (this._state === 'busy') {
        this._state = 'idle';
        queueMicrotask(() => this.idleCbs.forEach((cb) => cb()));
      }
    }
  }

  cancel(): void {}

  /** In-process code cannot be killed; a trusted inline model is expected to return. */
  kill(): void {}

  async ping(): Promise<void> {}

  async stop(): Promise<void> {
    if (this._state === 'exited') return;
    this._state = 'exited';
    await this.model?.teardown?.();
    this.model = null;
    for (const cb of this.exitCbs) cb({ code: 0, signal: null, reason: 'stopped', expected: true });
  }

  stats(): WorkerStats {
    return { pid: process.pid };
  }
  onExit(cb: (info: ExitInfo) => void): void {
    this.exitCbs.push(cb);
  }
  onIdle(cb: () => void): void {
    this.idleCbs.push(cb);
  }
  recentLog(): string[] {
    return [];
  }
}
