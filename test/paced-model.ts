// The model both scale-out test files run on gateways over one PostgreSQL (written per test into
// its models dir, since each gateway process loads it from there).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A model that takes a while per batch and says which worker process answered. */
export function writePacedModel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'model.yaml'),
    `name: paced
version: 1.0.0
runtime: node
entry: index.mjs
tasks:
  - name: length
    sequence_types: [DNA]
batching: { max_batch_size: 8, max_delay_ms: 0 }
scaling: { min_replicas: 1, max_replicas: 2, max_queue: 100000 }
resources: { memory_mb: 256, timeout_ms: 10000 }
`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export async function predict(batch) { await new Promise((r) => setTimeout(r, 10)); return batch.map((item) => ({ length: item.sequence.length, pid: process.pid })); }\n`,
  );
}
