// What a model package controls at load is bounded (src/manifest/load.ts, schema.ts): the size
// of model.yaml (checked before it is read), what its YAML expands to, the number of tasks and
// the length of its strings, and the number of files walked for its fingerprint. A 20 MB
// model.yaml used to stall a reload for 4.3 s and leave the gateway 640 MB bigger.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  discoverPackages,
  fingerprintDir,
  ManifestError,
  MAX_MANIFEST_BYTES,
  parseManifest,
} from '../src/manifest/load.js';
import { startGateway, type Harness } from './helpers.js';

const base = (name: string, extra = ''): string => `name: ${name}
version: 1.0.0
runtime: node
entry: index.mjs
tasks:
  - name: echo
    sequence_types: [DNA]
${extra}`;

function writePackage(root: string, name: string, yaml: string | null): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'index.mjs'),
    'export async function predict(batch) { return batch.map(() => ({ ok: true })); }\n',
  );
  if (yaml !== null) writeFileSync(join(dir, 'model.yaml'), yaml);
  return dir;
}

function issuesOf(yaml: string): string[] {
  try {
    parseManifest(yaml, 'model.yaml');
  } catch (e) {
    assert.ok(e instanceof ManifestError, String(e));
    return e.issues;
  }
  assert.fail('expected a ManifestError');
}

describe('package limits: manifest contents', () => {
  it('refuses YAML aliases that expand past the budget', () => {
    const big = `[${Array(20_000).fill('1234567').join(',')}]`;
    const bomb = base('bomb', `metadata:\n  a: &x ${big}\n  b: [${Array(99).fill('*x').join(',')}]\n`);
    assert.ok(bomb.length < MAX_MANIFEST_BYTES, 'small on disk');
    assert.match(issuesOf(bomb).join('\n'), /expands to more than 1000000 values and characters/);
    // The same anchor used a few times is fine.
    assert.doesNotThrow(() =>
      parseManifest(base('fine', `metadata:\n  a: &x [1, 2, 3]\n  b: [*x, *x]\n`), 'model.yaml'),
    );
  });

  it('bounds tasks, descriptions, paths, options and env', () => {
    const tasks = Array.from({ length: 65 }, (_, i) => `  - name: t${i}\n    sequence_types: [DNA]\n`).join('');
    assert.match(
      issuesOf(`name: many\nversion: 1.0.0\nruntime: node\nentry: index.mjs\ntasks:\n${tasks}`).join('\n'),
      /^tasks: Array must contain at most 64 element/m,
    );
    assert.match(
      issuesOf(base('d', `description: "${'x'.repeat(4097)}"\n`)).join('\n'),
      /^description: String must contain at most 4096/m,
    );
    assert.match(
      issuesOf(base('p', `data_dir: "${'d/'.repeat(2049)}"\n`)).join('\n'),
      /^data_dir: String must contain at most 4096/m,
    );
    const options = Array.from({ length: 65 }, (_, i) => `      o${i}: {type: string}`).join('\n');
    assert.match(
      issuesOf(base('o').replace('sequence_types: [DNA]', `sequence_types: [DNA]\n    options:\n${options}`)).join(
        '\n',
      ),
      /^tasks\.0\.options: at most 64 options/m,
    );
    const env = Array.from({ length: 257 }, (_, i) => `  V${i}: "1"`).join('\n');
    assert.match(issuesOf(base('e', `env:\n${env}\n`)).join('\n'), /^env: at most 256 variables/m);
    assert.match(
      issuesOf(base('e2', `env:\n  V: "${'v'.repeat(32_769)}"\n`)).join('\n'),
      /^env\.V: String must contain at most 32768/m,
    );
  });

  it('stops walking a package past its file limit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-files-'));
    try {
      for (let i = 0; i < 12; i++) writeFileSync(join(dir, `f${i}`), '');
      assert.throws(() => fingerprintDir(dir, 10), /holds more than 10 files and folders/);
      assert.match(fingerprintDir(dir, 12), /^[0-9a-f]{16}$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('package limits: model.yaml size, before reading', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'isomodel-limits-'));
    writePackage(root, 'good', base('good'));
    // Exactly at the limit: accepted (a comment pads it).
    const pad = base('edge');
    writePackage(root, 'edge', pad + '#' + 'x'.repeat(MAX_MANIFEST_BYTES - pad.length - 2) + '\n');
    // One byte over: refused.
    writePackage(
      root,
      'over',
      pad.replace('edge', 'over') + '#' + 'x'.repeat(MAX_MANIFEST_BYTES - pad.length - 1) + '\n',
    );
    // 20 MB (sparse: nothing is read, so nothing needs to be written).
    const huge = writePackage(root, 'huge', null);
    writeFileSync(join(huge, 'model.yaml'), base('huge'));
    truncateSync(join(huge, 'model.yaml'), 20 * 1024 * 1024);
    // A FIFO where model.yaml should be: reading it would block the gateway until a writer came.
    const fifo = writePackage(root, 'fifo', null);
    execFileSync('mkfifo', [join(fifo, 'model.yaml')]);
    // A directory named model.yaml.
    mkdirSync(join(writePackage(root, 'folder', null), 'model.yaml'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('lists oversized and irregular manifests as invalid, with the reason, and loads the rest', () => {
    const found = discoverPackages(root);
    assert.deepEqual(found.packages.map((p) => p.manifest.name).sort(), ['edge', 'good']);
    const reasons = Object.fromEntries(
      found.errors.map((e) => [e.file.split('/').slice(-2, -1)[0], e.issues.join('; ')]),
    );
    assert.deepEqual(Object.keys(reasons).sort(), ['fifo', 'folder', 'huge', 'over']);
    assert.equal(
      reasons.over,
      `model.yaml is ${MAX_MANIFEST_BYTES + 1} bytes; the limit is ${MAX_MANIFEST_BYTES} bytes (256 KiB)`,
    );
    assert.equal(
      reasons.huge,
      `model.yaml is ${20 * 1024 * 1024} bytes; the limit is ${MAX_MANIFEST_BYTES} bytes (256 KiB)`,
    );
    assert.equal(reasons.fifo, 'model.yaml must be a regular file');
    assert.equal(reasons.folder, 'model.yaml must be a regular file');
  });
});

describe('package limits: through a gateway', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp']);
  });
  after(async () => h?.close());

  it('reload lists a 20 MB model.yaml as invalid with its size, and the other models keep serving', async () => {
    const dir = writePackage(h.modelsDir, 'bloated', null);
    writeFileSync(join(dir, 'model.yaml'), base('bloated'));
    truncateSync(join(dir, 'model.yaml'), 20 * 1024 * 1024);
    const r = await h.post('/v1/models/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const err = r.body.data.errors.find((e: { file: string }) => e.file === join(dir, 'model.yaml'));
    assert.ok(err, JSON.stringify(r.body.data.errors));
    assert.deepEqual(err.issues, [
      `model.yaml is ${20 * 1024 * 1024} bytes; the limit is ${MAX_MANIFEST_BYTES} bytes (256 KiB)`,
    ]);
    const list = await h.get('/v1/models');
    assert.ok(
      list.body.data.invalid_packages.some(
        (p: { file: string; issues: string[] }) =>
          p.file === join(dir, 'model.yaml') && /the limit is/.test(p.issues[0]!),
      ),
    );
    assert.ok(!list.body.data.models.some((m: { name: string }) => m.name === 'bloated'));
    const p = await h.post('/models/revcomp/predict', { sequence: 'ACGT' });
    assert.equal(p.status, 200, JSON.stringify(p.body));
  });

  it('deploy from a path with an oversized model.yaml answers 400 with the reason', async () => {
    const dir = writePackage(mkdtempSync(join(tmpdir(), 'isomodel-ext-')), 'outside', null);
    try {
      writeFileSync(join(dir, 'model.yaml'), base('outside'));
      truncateSync(join(dir, 'model.yaml'), MAX_MANIFEST_BYTES + 10);
      const r = await h.post('/api/v1/models/deploy', { config: { model_id: 'outside', path: dir } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.message, /model\.yaml is 262154 bytes; the limit is 262144 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
