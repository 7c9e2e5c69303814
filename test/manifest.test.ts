// Manifest validation and package discovery.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { discoverPackages, ManifestError, parseManifest } from '../src/manifest/load.js';
import { parseMemoryMb } from '../src/manifest/schema.js';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';

const base = `
name: demo
version: 1.0.0
runtime: python
entry: model.py
tasks:
  - name: gc_content
    sequence_types: [dna, RNA]
`;

function issuesOf(yaml: string): string[] {
  try {
    parseManifest(yaml, 'model.yaml');
  } catch (e) {
    assert.ok(e instanceof ManifestError);
    return e.issues;
  }
  assert.fail('expected a ManifestError');
}

describe('manifest', () => {
  it('fills defaults and normalises sequence types', () => {
    const m = parseManifest(base, 'model.yaml');
    assert.deepEqual(m.tasks[0]!.sequence_types, ['DNA', 'RNA']);
    assert.equal(m.tasks[0]!.max_length, 5120);
    assert.equal(
      m.tasks[0]!.max_ambiguous_fraction,
      0.5,
      'a sequence more than half ambiguous is refused unless the task says otherwise',
    );
    assert.equal(m.isolation, 'process');
    assert.deepEqual(m.batching, { max_batch_size: 1, max_delay_ms: 0, priority_aging_ms: 1000 });
    assert.deepEqual(m.scaling, { min_replicas: 1, max_replicas: 1, idle_timeout_s: 0, max_queue: 1000 });
    assert.equal(m.resources.memory_mb, 512);
  });

  it('names the offending field', () => {
    assert.match(issuesOf(base.replace('runtime: python', 'runtime: java'))[0]!, /^runtime: /);
    assert.match(issuesOf(base.replace('[dna, RNA]', '[DNA, peptide]'))[0]!, /^tasks\.0\.sequence_types\.1: /);
    assert.match(issuesOf(base.replace('name: demo', 'name: ../etc'))[0]!, /^name: /);
    assert.match(
      issuesOf(base + 'scaling: { min_replicas: 3, max_replicas: 1 }\n')[0]!,
      /^scaling: max_replicas must be >= min_replicas/,
    );
    assert.match(issuesOf(base + 'colour: blue\n')[0]!, /Unrecognized key.*colour/);
    assert.match(issuesOf(base + 'isolation: inline\n')[0]!, /^isolation: inline isolation is only for runtime "node"/);
    assert.match(issuesOf('name: [unclosed')[0]!, /not valid YAML/);
    assert.match(
      issuesOf(base.replace('[dna, RNA]', '[dna, RNA]\n    max_ambiguous_fraction: 1.5'))[0]!,
      /^tasks\.0\.max_ambiguous_fraction: /,
    );
    assert.match(
      issuesOf(base.replace('[dna, RNA]', '[dna, RNA]\n    max_ambiguous_fraction: -0.1'))[0]!,
      /^tasks\.0\.max_ambiguous_fraction: /,
    );
  });

  it('parses memory sizes', () => {
    assert.equal(parseMemoryMb('256MB'), 256);
    assert.equal(parseMemoryMb('1GB'), 1024);
    assert.equal(parseMemoryMb('1.5Gi'), 1536);
    assert.equal(parseMemoryMb('512'), 512);
    assert.equal(parseManifest(base + 'resources: { memory_mb: 2GB }\n', 'm').resources.memory_mb, 2048);
  });

  it('discovers packages; one broken package does not hide the others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-discover-'));
    const v2 = base.replace('demo', 'good').replace(/version: .*/, 'version: 2.0.0');
    for (const [name, yaml] of [
      ['good', base.replace('demo', 'good')],
      ['bad', base.replace('runtime: python', 'runtime: 7')],
      ['dup', base.replace('demo', 'good')],
      ['good-v2', v2],
    ] as const) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'model.yaml'), yaml);
      writeFileSync(join(dir, name, 'model.py'), '');
    }
    const found = discoverPackages(dir);
    // Two versions of one model live side by side; the same version twice is an error.
    assert.deepEqual(
      found.packages.map((p) => `${p.manifest.name}@${p.manifest.version}`),
      [`good@${found.packages[0]!.manifest.version}`, 'good@2.0.0'],
    );
    assert.equal(found.errors.length, 2);
    assert.ok(found.errors.some((e) => /already provided by/.test(e.message)));
  });

  it('refuses files outside the package', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-escape-'));
    mkdirSync(join(dir, 'demo'));
    writeFileSync(
      join(dir, 'demo', 'model.yaml'),
      base.replace('entry: model.py', 'entry: ../../etc/passwd') + 'data_dir: /etc\n',
    );
    const err = discoverPackages(dir).errors[0]!;
    assert.match(err.message, /entry: must be a path inside the package/);
    assert.match(err.message, /data_dir: must be a path inside the package/);
  });

  it('reports a missing entry file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-entry-'));
    mkdirSync(join(dir, 'demo'));
    writeFileSync(join(dir, 'demo', 'model.yaml'), base);
    assert.match(discoverPackages(dir).errors[0]!.message, /entry: file model.py not found/);
  });

  it('every built-in model package is valid', () => {
    const found = discoverPackages(BUILTIN_MODELS_DIR);
    assert.deepEqual(found.errors, []);
    assert.ok(found.packages.length >= 2);
  });
});
