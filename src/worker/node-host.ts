// The Node worker SDK host: runs one model as a protocol-speaking worker process.
// Usage: node dist/src/worker/node-host.js /abs/path/to/model.mjs
// The ONNX host (onnx-host.ts) reuses runWorker with its own model loader.
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { gatewayLines, send } from './host-io.js';
import { LineSplitter, PROTOCOL_VERSION, type GatewayMessage, type ItemOutput, type WorkItem } from './protocol.js';
import { ModelError, loadNodeModel, type ModelContext, type NodeModel } from './node-model.js';
import { installSdkResolver } from './sdk-resolver.js';

// Protocol lines go straight to fd 1; console output is moved to stderr so a stray
// console.log in model code cannot corrupt the stream.
const toStderr = (...args: unknown[]): void => {
  process.stderr.write(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ') + '\n');
};
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;

function contextFromEnv(entry: string): ModelContext {
  const modelDir = process.env.ISOMODEL_MODEL_DIR ?? dirname(entry);
  return {
    name: process.env.ISOMODEL_MODEL_NAME ?? 'model',
    version: process.env.ISOMODEL_MODEL_VERSION ?? '0.0.0',
    modelDir,
    dataDir: process.env.ISOMODEL_DATA_DIR ?? join(modelDir, 'data'),
    replicaId: process.env.ISOMODEL_REPLICA_ID ?? 'manual',
    env: { ...process.env },
  };
}

export type ModelLoader = (entry: string, ctx: ModelContext) => Promise<NodeModel>;

const loadModule: ModelLoader = (entry) => loadNodeModel(pathToFileURL(entry).href);

export async function runWorker(load: ModelLoader): Promise<void> {
  const entry = process.argv[2];
  if (!entry) {
    send({ op: 'fatal', code: 'MODEL_NOT_LOADED', message: 'usage: <host> <model entry>' });
    process.exit(2);
  }
  const ctx = contextFromEnv(entry);
  installSdkResolver();
  let model: NodeModel;
  try {
    model = await load(entry, ctx);
    await model.setup?.(ctx);
  } catch (e) {
    const err = e as Error;
    // A ModelError is the model's own, explained refusal (weights not mounted, ...): its message
    // travels in the fatal line. Only an unexpected error needs its stack.
    if (!(e instanceof ModelError)) toStderr(err.stack ?? String(err));
    send({ op: 'fatal', code: e instanceof ModelError ? e.code : 'MODEL_NOT_LOADED', message: err.message });
    process.exit(1);
  }

  const cancelled = new Set<string>();
  const queue: Extract<GatewayMessage, { op: 'predict' }>[] = [];
  let running = false;
  let stopping = false;

  const finish = async (): Promise<void> => {
    try {
      await model.teardown?.();
    } finally {
      process.exit(0);
    }
  };

  const drain = async (): Promise<void> => {
    if (running) return;
    running = true;
    while (queue.length) {
      const msg = queue.shift()!;
      await handlePredict(model, msg, cancelled);
      cancelled.delete(msg.id);
    }
    running = false;
    if (stopping) await finish();
  };

  // The protocol's own line splitter rather than readline: less work per message on a path every
  // batch takes twice. No line limit: the gateway is trusted, and a batch may be large.
  const onLine = gatewayLines(
    (line) => toStderr(`isomodel worker: ignoring unparseable line from gateway: ${line.slice(0, 120)}`),
    (msg) => {
      switch (msg.op) {
        case 'cancel':
          cancelled.add(msg.id);
          break;
        case 'predict':
          queue.push(msg);
          void drain();
          break;
        case 'shutdown':
          stopping = true;
          if (!running) void finish();
          break;
      }
    },
  );
  const lines = new LineSplitter(onLine, Number.POSITIVE_INFINITY);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => lines.push(chunk));
  process.stdin.on('end', () => {
    stopping = true;
    if (!running) void finish();
  });

  send({
    op: 'ready',
    protocol: PROTOCOL_VERSION,
    pid: process.pid,
    model: { name: ctx.name, version: ctx.version },
    capabilities: { stream: typeof model.stream === 'function' },
  });
}

async function handlePredict(
  model: NodeModel,
  msg: { id: string; task: string; items: WorkItem[]; stream: boolean },
  cancelled: Set<string>,
): Promise<void> {
  try {
    if (msg.stream && model.stream) {
      const outputs = await model.stream(msg.items, msg.task, (index: number, data: unknown) => {
        if (cancelled.has(msg.id)) throw new ModelError('CANCELLED', 'cancelled by the gateway');
        send({ op: 'chunk', id: msg.id, index, data });
      });
      send({ op: 'end', id: msg.id, outputs: checkOutputs(outputs, msg.items.length) });
      return;
    }
    const outputs: ItemOutput[] = await model.predict(msg.items, msg.task);
    send({ op: 'result', id: msg.id, outputs: checkOutputs(outputs, msg.items.length) });
  } catch (e) {
    const err = e as Error;
    if (!(e instanceof ModelError)) toStderr(err.stack ?? String(err));
    send({
      op: 'error',
      id: msg.id,
      code: e instanceof ModelError ? e.code : 'PREDICTION_FAILED',
      message: err.message,
    });
  }
}

function checkOutputs(outputs: unknown, n: number): ItemOutput[] {
  if (!Array.isArray(outputs) || outputs.length !== n) {
    throw new ModelError(
      'PREDICTION_FAILED',
      `model returned ${Array.isArray(outputs) ? outputs.length : typeof outputs} outputs for a batch of ${n}`,
    );
  }
  for (const o of outputs) {
    if (typeof o !== 'object' || o === null || Array.isArray(o))
      throw new ModelError('PREDICTION_FAILED', 'each output must be an object');
  }
  return outputs as ItemOutput[];
}

// Run only when started as a program, not when imported by another host.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void runWorker(loadModule);
