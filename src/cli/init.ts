// `isomodel init <name> --runtime python|node`: scaffolds a working model package.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isValidModelName } from '../manifest/load.js';

function manifest(name: string, runtime: 'python' | 'node'): string {
  return `# ${name}: model package scaffolded by \`isomodel init\`. Edit the tasks, then call
# POST /v1/models/reload (or just save: a running gateway watches this folder).
name: ${name}
version: 0.1.0
description: ${name} (describe what it predicts, on which data it was trained)
runtime: ${runtime}
entry: ${runtime === 'python' ? 'model.py' : 'index.mjs'}
isolation: process
tasks:
  - name: sequence_length
    description: Length and base composition of a sequence (replace with your task).
    sequence_types: [DNA, RNA]
    max_length: 5120
    input: { type: string, description: A DNA or RNA sequence, example: ACGTACGT }
    output: { type: object, description: 'length and counts per letter' }
resources: { memory_mb: 256, cpus: 1, timeout_ms: 30000 }
batching: { max_batch_size: 16, max_delay_ms: 2 }
scaling: { min_replicas: 1, max_replicas: 1, idle_timeout_s: 0 }
`;
}

const PYTHON_MODEL = `"""Model code: isomodel runs this in its own worker process (see docs/worker-protocol.md)."""
from collections import Counter

from isomodel_worker import Model


class MyModel(Model):
    def setup(self, ctx):
        # Load weights from ctx.data_dir here; this runs once per replica, before traffic.
        self.name = ctx.name

    def predict(self, batch, task):
        # batch: [{"sequence": "ACGT", "options": {...}}, ...]; return one dict per item.
        return [{"length": len(item["sequence"]), "counts": dict(Counter(item["sequence"]))} for item in batch]
`;

const NODE_MODEL = `// Model code: isomodel runs this in its own worker process (see docs/worker-protocol.md).
export function setup(ctx) {
  // Load weights from ctx.dataDir here; this runs once per replica, before traffic.
  void ctx;
}

// batch: [{ sequence: 'ACGT', options: {...} }, ...]; return one object per item.
export function predict(batch) {
  return batch.map(({ sequence }) => {
    const counts = {};
    for (const ch of sequence) counts[ch] = (counts[ch] ?? 0) + 1;
    return { length: sequence.length, counts };
  });
}
`;

export function initPackage(name: string, runtime: 'python' | 'node', modelsDir: string): string {
  if (!isValidModelName(name)) throw new Error(`invalid model name "${name}": use lowercase letters, digits, ".", "_" and "-"`);
  const dir = resolve(modelsDir, name);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'model.yaml'), manifest(name, runtime));
  if (runtime === 'python') {
    writeFileSync(join(dir, 'model.py'), PYTHON_MODEL);
    writeFileSync(join(dir, 'requirements.txt'), '# this model needs only the Python standard library\n');
  } else {
    writeFileSync(join(dir, 'index.mjs'), NODE_MODEL);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `isomodel-model-${name}`, version: '0.1.0', private: true, type: 'module', dependencies: {} }, null, 2) + '\n');
  }
  writeFileSync(join(dir, 'data', '.gitkeep'), '');
  writeFileSync(join(dir, 'MODEL_CARD.md'), `# ${name}\n\n- Data: (what it was trained on)\n- Method: (how)\n- Measured: (accuracy, with the command that measures it)\n- Limits: (where it must not be used)\n`);
  return dir;
}
