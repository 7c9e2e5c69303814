// Hot reload: a changed package is swapped in only once its new version is ready, with no
// failed request during the swap; new, removed and broken packages are handled.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { sleep, startGateway, waitFor, type Harness } from './helpers.js';

function bumpVersion(dir: string, version: string): void {
  const file = join(dir, 'model.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^version: .*$/m, `version: ${version}`));
}

describe('hot reload', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp']);
  });
  after(async () => h.close());

  it('swaps a changed model with zero failed requests during the swap', async () => {
    const dir = join(h.modelsDir, 'revcomp');
    let running = true;
    const failures: unknown[] = [];
    const versions: string[] = [];
    const client = async (): Promise<void> => {
      while (running) {
        const r = await h.post('/models/revcomp/predict', { sequence: 'ACGTTGCA' });
        if (r.status !== 200) failures.push(r.body);
        else versions.push(r.body.data.version);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await sleep(200);
    // New code and a new version: the new worker must really run the new code.
    const entry = join(dir, 'index.mjs');
    writeFileSync(
      entry,
      readFileSync(entry, 'utf8').replace(
        'return { reverse_complement: rc,',
        'return { revision: 2, reverse_complement: rc,',
      ),
    );
    bumpVersion(dir, '1.0.1');
    const reload = await h.post('/v1/models/reload');
    assert.equal(reload.status, 200);
    assert.deepEqual(reload.body.data.updated, ['revcomp']);
    await sleep(300);
    running = false;
    await Promise.all(clients);
    assert.deepEqual(failures, []);
    assert.ok(versions.includes('1.0.0') && versions.at(-1) === '1.0.1', 'served by the old version, then the new');
    const r = await h.post('/models/revcomp/predict', { sequence: 'ACGT' });
    assert.equal(r.body.data.revision, 2);
  });

  it('adds and removes packages dropped into or taken out of the models dir', async () => {
    cpSync(join(BUILTIN_MODELS_DIR, 'gc-scanner'), join(h.modelsDir, 'gc-scanner'), { recursive: true });
    const added = await h.post('/v1/models/reload');
    assert.deepEqual(added.body.data.added, ['gc-scanner']);
    const r = await h.post('/models/gc-scanner/predict', { sequence: 'GGCC', task_type: 'gc_content' });
    assert.equal(r.body.data.gc_content, 1);
    rmSync(join(h.modelsDir, 'gc-scanner'), { recursive: true });
    const removed = await h.post('/v1/models/reload');
    assert.deepEqual(removed.body.data.removed, ['gc-scanner']);
    assert.equal(
      (await h.post('/models/gc-scanner/predict', { sequence: 'GGCC', task_type: 'gc_content' })).status,
      404,
    );
  });

  it('a broken manifest is reported, naming the field, and the old version keeps serving', async () => {
    const file = join(h.modelsDir, 'revcomp', 'model.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('max_length: 5120', 'max_length: -3'));
    const r = await h.post('/v1/models/reload');
    assert.equal(r.body.data.errors.length, 1);
    assert.match(r.body.data.errors[0].issues[0], /^tasks\.0\.max_length: /);
    const p = await h.post('/models/revcomp/predict', { sequence: 'ACGT' });
    assert.equal(p.status, 200);
    assert.equal(p.body.data.version, '1.0.1');
    writeFileSync(file, good);
  });
});

describe('hot reload on file change', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], { watch: true });
  });
  after(async () => h.close());

  it('picks up an edited manifest without an API call', async () => {
    bumpVersion(join(h.modelsDir, 'revcomp'), '2.0.0');
    await waitFor(async () => (await h.get('/models/revcomp/info')).body.data.version === '2.0.0', 15_000, 100);
    const r = await h.post('/models/revcomp/predict', { sequence: 'ACGT' });
    assert.equal(r.body.data.version, '2.0.0');
  });
});
