// Host software a model uses but does not ship (manifest `requires`, issue 23): on a machine
// without it the model is `needs_packages` (no worker started, no alert, no error log, the apt
// command in every place a person looks), and it loads once the software is there.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadPackage } from '../src/manifest/load.js';
import { globExists, missingRequirements } from '../src/manifest/requires.js';
import { manifestSchema } from '../src/manifest/schema.js';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { startupRows } from '../src/cli/serve.js';
import { startGateway, waitFor, type Harness } from './helpers.js';
import { join } from 'node:path';

const FLAG_ROOT = '/tmp/isomodel-requires-fixture';
const FLAG = join(FLAG_ROOT, 'v1', 'installed');

describe('models whose host packages are missing', { timeout: 120_000 }, () => {
  let h: Harness;
  const logs: Record<string, unknown>[] = [];

  before(async () => {
    rmSync(FLAG_ROOT, { recursive: true, force: true });
    // ocr as on a fresh machine: no tesseract on the PATH its workers get.
    h = await startGateway(
      ['revcomp', 'requires-node', 'requires-py', 'ocr'],
      { model_env: { ocr: { PATH: '/nonexistent' } } },
      { logs },
    );
  });

  after(async () => {
    await h?.close();
    rmSync(FLAG_ROOT, { recursive: true, force: true });
  });

  it('are needs_packages, start no worker, log no error and fire no alert', async () => {
    for (const m of ['requires-node', 'requires-py', 'ocr']) {
      assert.equal(h.gw.registry.status(m), 'needs_packages', m);
      assert.equal(h.gw.registry.deployment(m), undefined, `${m}: no worker was started`);
    }
    assert.equal(h.gw.registry.status('revcomp'), 'ready');
    assert.deepEqual(
      logs.filter((l) => (l.level as number) >= 50),
      [],
      'nothing at error level',
    );
    assert.ok(
      logs.some(
        (l) =>
          l.level === 30 &&
          /^model ocr needs packages: apt-get install tesseract-ocr tesseract-ocr-eng \(missing: command tesseract\)/.test(
            String(l.msg),
          ),
      ),
    );
    h.gw.monitor.sample(); // a monitor pass: where a failed model would raise its alert
    const alerts = (await h.get('/v1/monitor/alerts?state=firing')).body as any;
    assert.equal(alerts.data.active, 0, JSON.stringify(alerts.data.alerts));
    const detailed = (await h.get('/health/detailed')).body as any;
    assert.equal(detailed.data.status, 'healthy', JSON.stringify(detailed.data.reasons));
  });

  it('name exactly what is missing and the packages that provide it', async () => {
    assert.deepEqual(h.gw.registry.requirements('requires-py')!.missing, ['python module isomodel_no_such_module']);
    assert.deepEqual(h.gw.registry.requirements('requires-node')!.missing, [`file ${FLAG_ROOT}/*/installed`]);
    const list = ((await h.get('/v1/models')).body as any).data.models as any[];
    const py = list.find((m) => m.name === 'requires-py');
    assert.equal(py.status, 'needs_packages');
    assert.deepEqual(py.requires.packages, ['python3-isomodel-no-such-module']);
    assert.match(
      py.requires.hint,
      /^apt-get install python3-isomodel-no-such-module \(missing: python module isomodel_no_such_module\), then POST \/v1\/models\/requires-py\/load$/,
    );
    assert.equal(list.find((m) => m.name === 'revcomp').requires, null);
    const prom = String((await h.get('/metrics/prometheus')).body);
    assert.match(prom, /isomodel_model_state\{model="ocr",version="1\.0\.0",state="needs_packages"\} 1/);
    const rows = startupRows(h.gw, h.url);
    assert.match(rows.find((r) => r.model === 'ocr')!.note, /^apt-get install tesseract-ocr tesseract-ocr-eng/);
  });

  it('answer predictions 503 MODEL_NOT_LOADED with status needs_packages and the hint', async () => {
    const r = await h.post('/models/requires-node/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 503, JSON.stringify(r.body));
    const body = r.body as any;
    assert.equal(body.error.code, 'MODEL_NOT_LOADED');
    assert.equal(body.error.details.status, 'needs_packages');
    assert.match(body.message, /needs packages: apt-get install isomodel-fixture-pkg .*; the test makes the file/);
  });

  it('load once the software is there', async () => {
    mkdirSync(join(FLAG_ROOT, 'v1'), { recursive: true });
    writeFileSync(FLAG, 'yes');
    const load = await h.post('/v1/models/requires-node/load');
    assert.equal(load.status, 200, JSON.stringify(load.body));
    await waitFor(() => h.gw.registry.status('requires-node') === 'ready', 30_000);
    const r = await h.post('/models/requires-node/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as any).data.state, 'installed');
    assert.equal(h.gw.registry.requirements('requires-node'), null);
  });
});

describe('manifest requires', () => {
  const base = {
    name: 'm',
    version: '1.0.0',
    runtime: 'node',
    entry: 'i.mjs',
    tasks: [{ name: 't', sequence_types: ['DNA'] }],
  };

  it('rejects relative or escaping files, bad module and package names', () => {
    for (const requires of [
      { files: ['usr/share/x'] },
      { files: ['/usr/../etc/shadow'] },
      { python_modules: ['os; import sys'] },
      { packages: ['Tesseract OCR'] },
      { commands: ['rm -rf'] },
      { unknown: [] },
    ]) {
      assert.equal(manifestSchema.safeParse({ ...base, requires }).success, false, JSON.stringify(requires));
    }
    assert.equal(
      manifestSchema.safeParse({
        ...base,
        requires: { commands: ['tesseract', '/usr/bin/env'], files: ['/usr/share/*/x'] },
      }).success,
      true,
    );
  });

  it('matches * within one path segment only', () => {
    assert.equal(globExists('/usr/*/node'), globExists('/usr/bin/node') || globExists('/usr/local/node'));
    assert.equal(globExists('/proc/self/*tatus'), true);
    assert.equal(globExists('/proc/*/no-such-file-here'), false);
    assert.equal(globExists('/*/bin/sh'), globExists('/usr/bin/sh'));
  });

  it('are met for the built-in ocr and speech models here, and named when the PATH lacks them', async () => {
    const ocr = loadPackage(join(BUILTIN_MODELS_DIR, 'ocr')).manifest;
    const speech = loadPackage(join(BUILTIN_MODELS_DIR, 'speech')).manifest;
    assert.equal(
      await missingRequirements(ocr),
      null,
      'npm run test:setup installs tesseract-ocr and its English data',
    );
    assert.equal(await missingRequirements(speech), null, 'npm run test:setup installs python3-pocketsphinx');
    const fresh = await missingRequirements(ocr, { PATH: '/nonexistent' });
    assert.deepEqual(fresh?.missing, ['command tesseract']);
    assert.deepEqual(speech.requires?.packages, ['python3-numpy', 'python3-pocketsphinx', 'pocketsphinx-en-us']);
  });
});
