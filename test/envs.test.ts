// Per-model environments (src/envs): two Python models pinned to conflicting versions of one
// local package (isotiny 1.0 / 2.0, wheels written by the test), and two Node models pinned to
// conflicting versions of one local npm package (tarballs made by the test), served side by side
// from one gateway; cache reuse across restarts, rebuild on change, half-built envs, failures,
// `env ls` / `env prune`. Everything installs offline.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type ConfigInput } from '../src/config/config.js';
import { Gateway } from '../src/gateway.js';
import { ensureEnv, envStats, listEnvs, planEnv, pruneEnvs } from '../src/envs/index.js';
import { effectiveRequirements } from '../src/envs/python.js';
import { MARKER_FILE } from '../src/envs/build.js';
import { workerEnvSettings } from '../src/cli/env.js';
import { loadPackage } from '../src/manifest/load.js';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { request } from './helpers.js';
import { makeWheel } from './wheel.js';

const PY_MODEL = `import sys
import isotiny
from isomodel_worker import Model

class Tiny(Model):
    def predict(self, batch, task):
        return [{"lib": isotiny.VERSION, "value": isotiny.transform(i["sequence"]), "prefix": sys.prefix} for i in batch]
`;

const NODE_MODEL = `import { VERSION, transform } from 'isotiny';
export function predict(batch) {
  return batch.map((i) => ({ lib: VERSION, value: transform(i.sequence) }));
}
`;

function manifest(name: string, runtime: 'python' | 'node', extra = ''): string {
  return `name: ${name}
version: 1.0.0
runtime: ${runtime}
entry: ${runtime === 'python' ? 'model.py' : 'index.mjs'}
required: ${name !== 'py-bad'}
tasks:
  - name: tiny
    sequence_types: [DNA]
resources: { memory_mb: 256, timeout_ms: 10000 }
${extra}`;
}

let work: string;
let modelsDir: string;
let stateDir: string;
let gw: Gateway | null = null;
let url = '';

function config(overrides: ConfigInput = {}) {
  return loadConfig({
    cwd: stateDir,
    env: {},
    overrides: {
      host: '127.0.0.1',
      port: 0,
      models_dir: modelsDir,
      state_dir: stateDir,
      watch: false,
      cgroups: false,
      rate_limit: { max: 100_000 },
      envs: { wheel_dir: join(work, 'wheels') },
      ...overrides,
    },
  });
}

async function startGateway(): Promise<void> {
  gw = new Gateway(config(), pino({ level: process.env.ISOMODEL_TEST_LOG ?? 'silent' }));
  await gw.start();
  url = `http://127.0.0.1:${gw.address().port}`;
}

async function stopGateway(): Promise<void> {
  await gw?.close();
  gw = null;
}

async function predict(model: string): Promise<{ status: number; out: any; body: any }> {
  const r = await request<any>(`${url}/models/${model}/predict`, 'POST', { sequence: 'ACGTT' });
  return { status: r.status, out: r.body?.data, body: r.body };
}

// What a gateway of this config builds with (as root: an interpreter the worker user can run).
const settings = () => workerEnvSettings(config());

describe('per-model environments', { timeout: 180_000 }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'isomodel-envs-'));
    chmodSync(work, 0o755); // as root, workers run as nobody: the packages must be reachable
    modelsDir = join(work, 'models');
    stateDir = join(work, 'state');
    // isotiny 1.0 lower-cases, 2.0 reverses: two wheels.
    mkdirSync(join(work, 'wheels'));
    makeWheel('python3', join(work, 'wheels'), '1.0', 'VERSION = "1.0"\ndef transform(s):\n    return s.lower()\n');
    makeWheel('python3', join(work, 'wheels'), '2.0', 'VERSION = "2.0"\ndef transform(s):\n    return s[::-1]\n');
    // isotiny for npm, same idea: two tarballs.
    for (const [ver, body] of [
      ['1.0.0', 'export const VERSION = "1.0.0";\nexport const transform = (s) => s.toLowerCase();\n'],
      ['2.0.0', 'export const VERSION = "2.0.0";\nexport const transform = (s) => s.split("").reverse().join("");\n'],
    ] as const) {
      const src = join(work, `npm-src-${ver}`, 'package');
      mkdirSync(src, { recursive: true });
      writeFileSync(
        join(src, 'package.json'),
        JSON.stringify({ name: 'isotiny', version: ver, type: 'module', main: 'index.js' }),
      );
      writeFileSync(join(src, 'index.js'), body);
      execFileSync('tar', ['-czf', join(work, `isotiny-${ver}.tgz`), '-C', join(work, `npm-src-${ver}`), 'package']);
    }
    const add = (name: string, files: Record<string, string>): void => {
      mkdirSync(join(modelsDir, name), { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(modelsDir, name, f), text);
    };
    // py-one: wheels from the config's envs.wheel_dir; two replicas start at once (one build).
    add('py-one', {
      'model.yaml': manifest('py-one', 'python', 'scaling: { min_replicas: 2, max_replicas: 2 }\n'),
      'model.py': PY_MODEL,
      'requirements.txt': '# pinned\nisotiny==1.0\n',
    });
    // py-two: wheels from the manifest (environment.wheels, relative to the package).
    add('py-two', {
      'model.yaml': manifest('py-two', 'python', 'environment: { wheels: ../../wheels }\n'),
      'model.py': PY_MODEL,
      'requirements.txt': 'isotiny==2.0\n',
    });
    // py-bad: a version nobody has.
    add('py-bad', {
      'model.yaml': manifest('py-bad', 'python'),
      'model.py': PY_MODEL,
      'requirements.txt': 'isotiny==3.0\n',
    });
    // Local dependencies relative to the package: rewritten for the env, which lives elsewhere.
    add('node-one', {
      'model.yaml': manifest('node-one', 'node'),
      'index.mjs': NODE_MODEL,
      'package.json': JSON.stringify({ type: 'module', dependencies: { isotiny: 'file:../../isotiny-1.0.0.tgz' } }),
    });
    add('node-two', {
      'model.yaml': manifest('node-two', 'node'),
      'index.mjs': NODE_MODEL,
      'package.json': JSON.stringify({ type: 'module', dependencies: { isotiny: 'file:../../isotiny-2.0.0.tgz' } }),
    });
  });

  after(async () => {
    await stopGateway();
    rmSync(work, { recursive: true, force: true });
  });

  it('needs no env for comment-only requirements, empty dependencies or an explicit interpreter', async () => {
    assert.deepEqual(effectiveRequirements('# nothing\n\n  # really\n'), []);
    assert.deepEqual(effectiveRequirements('a==1 # pinned\n--index-url http://x\nb\n'), ['a==1', 'b']);
    const s = { workDir: `${stateDir}-work`, python: 'python3' };
    assert.equal(await planEnv(loadPackage(join(BUILTIN_MODELS_DIR, 'gc-scanner')), s), null);
    assert.equal(await planEnv(loadPackage(join(BUILTIN_MODELS_DIR, 'revcomp')), s), null);
    // dnabert2 names /usr/bin/python3 (Debian's torch) and no environment block: used as-is.
    assert.equal(await planEnv(loadPackage(join(BUILTIN_MODELS_DIR, 'dnabert2')), s), null);
  });

  it('says clearly when requirements need a package source and none is configured', async () => {
    const pkg = loadPackage(join(modelsDir, 'py-one'));
    await assert.rejects(
      ensureEnv(pkg, { workDir: join(work, 'nosource'), python: 'python3' }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'MODEL_NOT_LOADED');
        assert.match(e.message, /no package source is configured.*envs\.wheel_dir/);
        return true;
      },
    );
  });

  it('serves conflicting versions of one package side by side, each model in its own env', async () => {
    const before = envStats.builds;
    await startGateway();
    const [one, two, n1, n2] = await Promise.all([
      predict('py-one'),
      predict('py-two'),
      predict('node-one'),
      predict('node-two'),
    ]);
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual([one.out.lib, one.out.value], ['1.0', 'acgtt']);
    assert.deepEqual([two.out.lib, two.out.value], ['2.0', 'TTGCA']);
    // In the work dir, beside the state dir (which workers cannot enter).
    assert.ok(one.out.prefix.startsWith(join(`${stateDir}-work`, 'envs', 'python', 'py-one-')), one.out.prefix);
    assert.equal(n1.status, 200, JSON.stringify(n1.body));
    assert.deepEqual([n1.out.lib, n1.out.value], ['1.0.0', 'acgtt']);
    assert.deepEqual([n2.out.lib, n2.out.value], ['2.0.0', 'TTGCA']);
    // Four envs, each built once although py-one started two replicas at the same time;
    // py-bad's failed build counts too.
    assert.equal(envStats.builds - before, 5);
    // Package folders are left untouched.
    assert.throws(() => statSync(join(modelsDir, 'node-one', 'node_modules')));
  });

  it('fails a model whose environment cannot be built, with pip’s error', async () => {
    const models = await request<any>(`${url}/v1/models`, 'GET');
    const bad = models.body.data.models.find((m: any) => m.name === 'py-bad');
    assert.equal(bad.status, 'failed');
    const r = await predict('py-bad');
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(r.body.message, /environment for model py-bad could not be built: pip install failed.*isotiny==3\.0/s);
    // The others keep serving.
    assert.equal((await predict('py-two')).status, 200);
  });

  it('reuses built environments across gateway restarts', async () => {
    const marker = join((await planEnv(loadPackage(join(modelsDir, 'py-two')), await settings()))!.dir, MARKER_FILE);
    const mtime = statSync(marker).mtimeMs;
    await stopGateway();
    const before = envStats.builds;
    await startGateway();
    assert.equal((await predict('py-two')).out.lib, '2.0');
    assert.equal((await predict('node-one')).out.lib, '1.0.0');
    assert.equal(envStats.builds - before, 1, 'only py-bad (never completed) is tried again');
    assert.equal(statSync(marker).mtimeMs, mtime);
  });

  it('rebuilds when the dependency file changes, and never uses a half-built env', async () => {
    const req = join(modelsDir, 'py-one', 'requirements.txt');
    const oldDir = (await planEnv(loadPackage(join(modelsDir, 'py-one')), await settings()))!.dir;
    writeFileSync(req, 'isotiny==2.0\n');
    // An interrupted build of the new env: files but no marker.
    const newDir = (await planEnv(loadPackage(join(modelsDir, 'py-one')), await settings()))!.dir;
    assert.notEqual(newDir, oldDir);
    mkdirSync(join(newDir, 'bin'), { recursive: true });
    writeFileSync(join(newDir, 'bin', 'python'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    const before = envStats.builds;
    const summary = await request<any>(`${url}/v1/models/reload`, 'POST', {});
    assert.ok(summary.body.data.updated.includes('py-one'), JSON.stringify(summary.body));
    const r = await predict('py-one');
    assert.deepEqual([r.out.lib, r.out.value], ['2.0', 'TTGCA']);
    assert.equal(envStats.builds - before, 1);
    assert.ok(readFileSync(join(newDir, MARKER_FILE), 'utf8').includes('isotiny==2.0'));
    assert.ok(readFileSync(join(newDir, 'build.log'), 'utf8').includes('pip'));
  });

  it('lists environments and prunes those no package uses', async () => {
    const c = config();
    const s = await workerEnvSettings(c);
    const pkgs = ['py-one', 'py-two', 'py-bad', 'node-one', 'node-two'].map((n) => loadPackage(join(modelsDir, n)));
    const envs = await listEnvs(s, pkgs);
    const ready = envs.filter((e) => e.state === 'ready');
    assert.deepEqual(
      ready
        .filter((e) => e.in_use)
        .map((e) => e.model)
        .sort(),
      ['node-one', 'node-two', 'py-one', 'py-two'],
    );
    assert.deepEqual(
      ready.filter((e) => !e.in_use).map((e) => e.model),
      ['py-one'],
      'the py-one env of isotiny==1.0',
    );
    assert.ok(envs.some((e) => e.model === 'py-bad' && e.state === 'incomplete'));
    // Through the CLI, as an operator would.
    const out = execFileSync(
      process.execPath,
      [
        join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
        '--models-dir',
        modelsDir,
        '--state-dir',
        stateDir,
        'env',
        'ls',
        '--json',
      ],
      { cwd: work, encoding: 'utf8' },
    );
    assert.equal((JSON.parse(out) as unknown[]).length, envs.length);
    const removed = await pruneEnvs(s, pkgs);
    assert.deepEqual(removed.map((e) => `${e.model}:${e.state}`).sort(), ['py-bad:incomplete', 'py-one:ready']);
    const left = await listEnvs(s, pkgs);
    assert.equal(left.length, 4);
    assert.ok(left.every((e) => e.in_use && e.state === 'ready'));
    // Still serving from the kept envs.
    assert.equal((await predict('node-two')).out.lib, '2.0.0');
  });
});
