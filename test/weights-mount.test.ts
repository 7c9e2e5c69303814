// Weights outside the package reach a sandboxed worker (issue 17): the folder the operator set in
// model_env, or that `isomodel pull --for` filled, is bound read-only at the same path; a path
// the manifest names by itself is not (a package could otherwise have any host file bound in).
// The docker form is in docker.test.ts ("mounts the operator's weights folder read-only").
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { containerSpec } from '../src/drivers/docker-spec.js';
import { findBwrap } from '../src/drivers/sandbox.js';
import { manifestSchema } from '../src/manifest/schema.js';
import { operatorWeightsPath } from '../src/manifest/weights.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';

describe('which weights path is made visible', () => {
  const root = workerTmpDir('isomodel-wpath-');
  after(() => rmSync(root, { recursive: true, force: true }));
  const m = manifestSchema.parse({
    name: 'm',
    version: '1.0.0',
    runtime: 'node',
    entry: 'i.mjs',
    env: { W: root },
    weights: { env: 'W' },
    tasks: [{ name: 't', sequence_types: ['DNA'] }],
  });

  it("the operator's or a pull's folder when it exists; never the manifest's own default", () => {
    assert.equal(operatorWeightsPath(m, undefined), null, 'the manifest names an existing folder by itself: not bound');
    assert.equal(operatorWeightsPath(m, { W: root }), root);
    assert.equal(operatorWeightsPath(m, { W: join(root, 'absent') }), null);
    assert.equal(operatorWeightsPath(m, { W: 'relative/path' }), null);
    assert.equal(operatorWeightsPath(m, { W: `${root}/../${root.split('/').pop()}` }), null, 'no ".." segments');
    assert.equal(operatorWeightsPath({ ...m, weights: undefined }, { W: root }), null, 'no weights declared');
  });

  it('a docker replica gets it as a read-only bind at the same path', () => {
    const pkg = { dir: '/srv/m', fingerprint: 'x', manifest: m };
    const spec = containerSpec({
      pkg,
      replicaId: 'r1',
      image: 'sha256:x',
      env: {},
      hostCpus: 2,
      readOnlyMounts: [root],
    });
    assert.deepEqual(spec.HostConfig?.Mounts, [{ Type: 'bind', Source: root, Target: root, ReadOnly: true }]);
    assert.equal(
      containerSpec({ pkg, replicaId: 'r1', image: 'sha256:x', env: {}, hostCpus: 2 }).HostConfig?.Mounts,
      undefined,
    );
  });
});

describe('weights in a bubblewrap sandbox', { timeout: 120_000 }, () => {
  let h: Harness;
  let weights: string;

  before(async () => {
    assert.ok(findBwrap(), 'bubblewrap (bwrap) is not installed; apt-get install bubblewrap');
    weights = join(workerTmpDir('isomodel-wsandbox-'), 'w');
    mkdirSync(weights, { mode: 0o755 });
    writeFileSync(join(weights, 'weights.txt'), 'sandboxed\n', { mode: 0o644 });
    h = await startGateway(['weights-sandbox'], { model_env: { 'weights-sandbox': { WEIGHTS_NODE_PATH: weights } } });
  });
  after(async () => {
    await h?.close();
    if (weights) rmSync(join(weights, '..'), { recursive: true, force: true });
  });

  it('reads the folder the operator set', async () => {
    const r = await h.post('/models/weights-sandbox/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as any).data.word, 'sandboxed');
  });
});
