// The Node model interface (what a model author writes), shared by the worker host and the
// inline driver so both run model code the same way.
import type { ItemOutput, WorkItem } from './protocol.js';

export class ModelError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ModelError';
  }
}

/**
 * The bytes of an image or audio item's input (`item.input`: format, media_type, width/height or
 * sample_rate/…, and the file as base64 `data`, already checked by the gateway).
 */
export function mediaBytes(input: { data: string }): Buffer {
  return Buffer.from(input.data, 'base64');
}

export interface ModelContext {
  name: string;
  version: string;
  modelDir: string;
  dataDir: string;
  replicaId: string;
  env: Record<string, string | undefined>;
}

export interface NodeModel {
  setup?(ctx: ModelContext): unknown;
  predict(batch: WorkItem[], task: string): ItemOutput[] | Promise<ItemOutput[]>;
  stream?(
    batch: WorkItem[],
    task: string,
    emit: (index: number, data: unknown) => void,
  ): ItemOutput[] | Promise<ItemOutput[]>;
  teardown?(): unknown;
}

/** Accepts named exports or a default-exported object/class instance. */
export async function loadNodeModel(url: string): Promise<NodeModel> {
  const mod = (await import(url)) as Record<string, unknown>;
  let candidate: unknown = typeof mod.predict === 'function' ? mod : mod.default;
  if (typeof candidate === 'function') candidate = new (candidate as new () => unknown)();
  const model = candidate as Partial<NodeModel> | undefined;
  if (!model || typeof model.predict !== 'function') {
    throw new ModelError(
      'MODEL_NOT_LOADED',
      'model module must export predict(batch, task) (named or on a default export)',
    );
  }
  return model as NodeModel;
}
