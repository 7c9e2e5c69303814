// The model registry (src/scheduler/registry.ts) without a gateway: real package folders in a
// temp models dir, a real SQLite state store, and in-memory workers (test/fake-worker.ts) behind
// each deployment, so versions load, fail, swap and drain in milliseconds. deployments.test.ts,
// reload.test.ts and scheduler.test.ts check the same through a real gateway and real workers;
// this file runs in a few seconds, for `npm run mutate -- scheduler-registry`.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import pino from 'pino';
import { IsoError } from '../src/errors.js';
import { ModelRegistry, type RegistryOptions } from '../src/scheduler/registry.js';
import { StateStore } from '../src/store/db.js';
import { Fleet } from './fake-worker.js';
import { failFastIt } from './fail-fast.js';

const it = failFastIt(8000);
const dirs: string[] = [];
const stores: StateStore[] = [];
const registries: ModelRegistry[] = [];
after(async () => {
  for (const r of registries) await r.close();
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Writes a package folder `<models>/<folder>` for model `name` at `version`. */
function writePackage(models: string, folder: string, name: string, version: string, extra: string[] = []): string {
  const dir = join(models, folder);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.mjs'), 'export default {};\n');
  writeFileSync(
    join(dir, 'model.yaml'),
    [
      `name: ${name}`,
      `version: "${version}"`,
      'runtime: node',
      'entry: index.mjs',
      'tasks:',
      '  - { name: echo, sequence_types: [DNA], max_length: 100 }',
      ...extra,
    ].join('\n') + '\n',
  );
  return dir;
}

function setup(opts: RegistryOptions = {}) {
  const models = tempDir('isomodel-registry-models-');
  const state = new StateStore(tempDir('isomodel-registry-state-'));
  stores.push(state);
  const fleet = new Fleet();
  fleet.auto = true;
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  const make = (): ModelRegistry => {
    const r = new ModelRegistry(models, fleet.create, logger, state, undefined, opts);
    registries.push(r);
    return r;
  };
  return { models, state, fleet, lines, make };
}

const flush = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
};
const code = (c: string, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof IsoError, String(e));
  assert.equal(e.code, c, e.message);
  if (message) assert.match(e.message, message);
  return true;
};
const echo = async (reg: ModelRegistry, id: string): Promise<string> => {
  const d = reg.serving(id);
  const [out] = await d.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] });
  assert.deepEqual(out, { echo: 'AC', by: (out as { by: string }).by });
  return d.version;
};

describe('registry: discovery, versions, status', () => {
  it('loads the newest version of each model; names sorted; invalid packages listed; the models table kept', async () => {
    const { models, state, fleet, make, lines } = setup();
    writePackage(models, 'b1', 'beta', '1.9.0');
    writePackage(models, 'b2', 'beta', '1.10.0');
    writePackage(models, 'a1', 'alpha', '2.0.0');
    mkdirSync(join(models, 'broken'));
    writeFileSync(join(models, 'broken', 'model.yaml'), 'name: Broken!\n');
    const reg = make();
    await reg.init();
    assert.deepEqual(reg.names(), ['alpha', 'beta']);
    assert.equal(reg.names(), reg.names());
    assert.equal(fleet.workers.length, 2);
    assert.deepEqual(
      reg.versions('beta').map((v) => [v.version, v.status, v.default, v.weight, v.pinned, v.last_error]),
      [
        ['1.10.0', 'ready', true, null, false, null],
        ['1.9.0', 'unloaded', false, null, false, null],
      ],
    );
    assert.equal(reg.versions('beta')[1]!.dir, join(models, 'b1'));
    assert.equal(reg.defaultVersion('beta'), '1.10.0');
    assert.equal(reg.status('beta'), 'ready');
    assert.equal(reg.status('beta@1.9.0'), 'unloaded');
    assert.equal(reg.package('beta@1.9.0').manifest.version, '1.9.0');
    assert.equal(reg.package('beta').manifest.version, '1.10.0');
    assert.equal(reg.deployment('beta')?.version, '1.10.0');
    assert.equal(reg.deployment('beta@1.9.0'), undefined);
    assert.equal(reg.deployment('ghost'), undefined);
    assert.equal(reg.allDeployments().length, 2);
    assert.equal(reg.invalidPackages().length, 1);
    assert.match(reg.invalidPackages()[0]!.file, /broken\/model\.yaml$/);
    assert.ok(lines.some((l) => l.msg === 'invalid model package'));
    assert.ok(lines.some((l) => l.msg === 'model ready' && l.model === 'alpha'));
    assert.equal(await echo(reg, 'beta'), '1.10.0');
    // The models table holds each model's default version.
    assert.deepEqual(
      state.listModels().map((m) => [m.name, m.version, m.state, m.runtime, m.last_error, m.loaded_at !== null]),
      [
        ['alpha', '2.0.0', 'ready', 'node', null, true],
        ['beta', '1.10.0', 'ready', 'node', null, true],
      ],
    );
    // Unknown names and versions: MODEL_NOT_FOUND, with what exists.
    assert.throws(
      () => reg.status('ghost'),
      (e: IsoError) =>
        code('MODEL_NOT_FOUND', /^no model named "ghost"$/)(e) &&
        JSON.stringify(e.details) === '{"available":["alpha","beta"]}',
    );
    assert.throws(
      () => reg.status('NOT A NAME'),
      (e: IsoError) => code('MODEL_NOT_FOUND')(e) && e.details === undefined,
    );
    assert.throws(
      () => reg.status('beta@9'),
      (e: IsoError) =>
        code('MODEL_NOT_FOUND', /^model beta has no version "9"$/)(e) &&
        JSON.stringify(e.details) === '{"versions":["1.10.0","1.9.0"]}',
    );
    assert.throws(() => reg.status('beta@'), code('MODEL_NOT_FOUND', /names no version/));
  });

  it('init without loading; a version policy; autoload false', async () => {
    const { models, make, fleet } = setup({ versionPolicy: (n) => (n === 'many' ? { all: true } : { latest: 1 }) });
    writePackage(models, 'm1', 'many', '1');
    writePackage(models, 'm2', 'many', '2');
    writePackage(models, 'lazy', 'lazy', '1', ['autoload: false']);
    const idle = make();
    await idle.init({ load: false });
    assert.equal(fleet.workers.length, 0);
    assert.equal(idle.status('many'), 'unloaded');
    const reg = make();
    await reg.init();
    await reg.initialLoadsSettled();
    assert.deepEqual(
      reg.versions('many').map((v) => v.status),
      ['ready', 'ready'],
    );
    assert.equal(reg.status('lazy'), 'unloaded');
    assert.throws(
      () => reg.serving('lazy'),
      code('MODEL_NOT_LOADED', /^model lazy is not loaded; POST \/v1\/models\/lazy\/load$/),
    );
    assert.throws(() => reg.serving('many@3'), code('MODEL_NOT_FOUND'));
    // load pins it; unload unpins.
    const d = await reg.load('lazy');
    assert.equal(d.state, 'ready');
    assert.equal(await reg.load('lazy'), d);
    assert.equal(reg.versions('lazy')[0]!.pinned, true);
    await reg.unload('lazy');
    assert.equal(reg.status('lazy'), 'unloaded');
    assert.equal(reg.versions('lazy')[0]!.pinned, false);
    assert.equal(d.state, 'stopped');
    assert.throws(
      () => reg.serving('lazy@1'),
      code('MODEL_NOT_LOADED', /^model lazy@1 is not loaded; POST \/v1\/models\/lazy%401\/load$/),
    );
  });

  it('a version that fails to load: failed, with its error; a load in progress is shared and reported as loading', async () => {
    const { models, make, fleet, lines, state } = setup();
    writePackage(models, 'f', 'flaky', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    fleet.plans.push('fail');
    await assert.rejects(reg.load('flaky'), code('MODEL_NOT_LOADED', /^boom$/));
    assert.equal(reg.status('flaky'), 'failed');
    assert.equal(reg.lastError('flaky'), 'boom');
    assert.equal(reg.versions('flaky')[0]!.last_error, 'boom');
    assert.throws(() => reg.serving('flaky'), code('MODEL_NOT_LOADED', /^model flaky failed to load: boom$/));
    assert.ok(lines.some((l) => l.msg === 'model failed to load' && l.error === 'boom'));
    assert.equal(state.listModels().find((m) => m.name === 'flaky')?.state, 'failed');
    // Loading: concurrent loads share one start.
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const a = reg.load('flaky');
    const b = reg.load('flaky');
    await flush();
    assert.equal(reg.status('flaky'), 'loading');
    assert.throws(
      () => reg.serving('flaky'),
      (e: IsoError) => code('MODEL_NOT_LOADED', /^model flaky is loading$/)(e) && e.retryAfterS === 2,
    );
    open();
    assert.equal(await a, await b);
    assert.equal(reg.status('flaky'), 'ready');
    assert.equal(reg.lastError('flaky'), undefined);
    assert.equal(fleet.workers.length, 2);
  });
});

describe('registry: traffic, promote, rollback, rolling update, scale, remove', () => {
  it('a traffic split loads its versions and routes by weight; validation; unload leaves the split', async () => {
    const { models, make } = setup();
    writePackage(models, 'v1', 'm', '1');
    writePackage(models, 'v2', 'm', '2');
    const reg = make();
    await reg.init();
    assert.equal(reg.status('m@1'), 'unloaded');
    await assert.rejects(reg.setTraffic('m', { 3: 1 }), code('INVALID_REQUEST', /^model m has no version 3$/));
    await assert.rejects(reg.setTraffic('m', { 1: 0, 2: 0 }), code('INVALID_REQUEST', /weight above 0/));
    await reg.setTraffic('m', { 1: 100, 2: 0 });
    assert.equal(reg.status('m@1'), 'ready');
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: { 1: 100, 2: 0 }, history: [] });
    for (let i = 0; i < 5; i++) assert.equal(reg.serving('m').version, '1');
    assert.equal(reg.serving('m@2').version, '2');
    assert.deepEqual(
      reg.versions('m').map((v) => v.weight),
      [0, 100],
    );
    // A registry started on the same state dir comes up with the split.
    const again = make();
    await again.init();
    assert.deepEqual(again.traffic('m').weights, { 1: 100, 2: 0 });
    assert.equal(again.status('m@1'), 'ready');
    // Unloading a weighted version drops it from the split; none left: no split.
    await reg.unload('m@1');
    assert.equal(reg.traffic('m').weights, null);
    assert.equal(reg.serving('m').version, '2');
    await reg.setTraffic('m', null);
    assert.equal(reg.traffic('m').weights, null);
  });

  it('promote, rollback and pinDefault move the default version and keep a history', async () => {
    const { models, make } = setup();
    writePackage(models, 'v1', 'm', '1');
    writePackage(models, 'v2', 'm', '2');
    const reg = make();
    await reg.init();
    assert.equal(reg.pinDefault('m'), '2');
    await reg.promote('m', '1');
    assert.deepEqual(reg.traffic('m'), { default_version: '1', weights: null, history: ['2'] });
    assert.equal(reg.serving('m').version, '1');
    await assert.rejects(reg.promote('m', '7'), code('MODEL_NOT_FOUND'));
    assert.equal(await reg.rollback('m'), '2');
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: null, history: [] });
    await assert.rejects(
      reg.rollback('m'),
      code('INVALID_REQUEST', /^model m has no earlier version to roll back to$/),
    );
  });

  it('a rolling update starts the new version, moves traffic to it and drains the old; no request fails', async () => {
    // Only version 1 loads at start: the update starts 2 with its overrides.
    const { models, make, fleet } = setup({ versionPolicy: () => ({ specific: ['1'] }) });
    writePackage(models, 'v1', 'm', '1');
    writePackage(models, 'v2', 'm', '2');
    const reg = make();
    await reg.init();
    await reg.promote('m', '1');
    const old = reg.deployment('m@1')!;
    // Hold a request on the old version while it updates.
    fleet.auto = false;
    const pending = old.submit({ task: 'hold', items: [{ sequence: 'A', options: {} }] }).catch((e: Error) => e);
    fleet.auto = true;
    const update = reg.rollingUpdate('m', '2', { scaling: { max_replicas: 2 } });
    await flush(30);
    assert.equal(reg.serving('m').version, '2');
    const oldWorker = fleet.workers.find((w) => w.open.length)!;
    oldWorker.answer();
    const r = await update;
    assert.deepEqual(r, { previous: ['1'] });
    assert.ok(Array.isArray(await pending));
    assert.equal(old.state, 'stopped');
    assert.equal(reg.status('m@1'), 'unloaded');
    assert.equal(reg.deployment('m@2')!.scaling.max_replicas, 2);
    assert.deepEqual(reg.traffic('m').history, ['1']);
  });

  it('new settings for the serving version (rolling update or deploy) start a fresh deployment of it; the old one drains', async () => {
    const { models, make, fleet } = setup();
    writePackage(models, 'v1', 'm', '1');
    const reg = make();
    await reg.init();
    const old = reg.deployment('m@1')!;
    fleet.auto = false;
    const pending = old.submit({ task: 'hold', items: [{ sequence: 'A', options: {} }] }).catch((e: Error) => e);
    fleet.auto = true;
    // Same version, new memory: before, the overrides were stored and the running deployment kept.
    const update = reg.rollingUpdate('m', '1', { resources: { memory_mb: 384 } });
    await flush(30);
    const fresh = reg.deployment('m@1')!;
    assert.notEqual(fresh, old, 'a fresh deployment serves');
    assert.equal(fresh.pkg.manifest.resources.memory_mb, 384);
    assert.equal(reg.serving('m'), fresh);
    fleet.workers.find((w) => w.open.length)!.answer();
    assert.deepEqual(await update, { previous: [] });
    assert.ok(Array.isArray(await pending), 'the request held on the old deployment was answered');
    assert.equal(old.state, 'stopped');
    // Unchanged settings keep the running deployment; a deploy (load) with new ones restarts it too.
    await reg.rollingUpdate('m', '1', { resources: { memory_mb: 384 } });
    assert.equal(reg.deployment('m@1'), fresh);
    await reg.load('m@1', { scaling: { max_replicas: 3 } });
    const third = reg.deployment('m@1')!;
    assert.notEqual(third, fresh);
    assert.equal(third.scaling.max_replicas, 3);
    assert.equal(third.pkg.manifest.resources.memory_mb, 384, 'earlier overrides kept');
    assert.equal(await echo(reg, 'm'), '1');
  });

  it("scale sets a version's replicas (0: none until a request wakes one); remove forgets a model", async () => {
    const { models, make, fleet, state } = setup();
    writePackage(models, 'v1', 'm', '1', ['scaling: { min_replicas: 1, max_replicas: 3 }']);
    const reg = make();
    await reg.init();
    await reg.scale('m', 2);
    assert.equal(reg.deployment('m')!.replicaInfo().length, 2);
    await reg.scale('m', 0);
    assert.equal(reg.deployment('m')!.replicaInfo().length, 0);
    assert.deepEqual([reg.deployment('m')!.scaling.min_replicas, reg.deployment('m')!.scaling.max_replicas], [0, 1]);
    assert.equal(await echo(reg, 'm'), '1');
    // Scaling an unloaded version to 0 loads nothing; to 1 loads it.
    await reg.unload('m');
    const n = fleet.workers.length;
    await reg.scale('m', 0);
    assert.equal(fleet.workers.length, n);
    await reg.scale('m', 1);
    assert.equal(reg.status('m'), 'ready');
    await reg.remove('m');
    // Its folder is still in the models dir: listed, unloaded.
    assert.equal(reg.status('m'), 'unloaded');
    assert.equal(state.listModels()[0]!.state, 'unloaded');
  });
});

describe('registry: reload and deploy from a folder', () => {
  it('reload adds, updates (blue/green), removes and keeps versions; it reports each', async () => {
    const { models, make, fleet, state } = setup();
    writePackage(models, 'keep', 'keep', '1');
    writePackage(models, 'gone', 'gone', '1');
    const ch = writePackage(models, 'change', 'change', '1');
    const reg = make();
    await reg.init();
    const before = reg.deployment('change')!;
    writeFileSync(join(ch, 'index.mjs'), 'export default { changed: true };\n');
    rmSync(join(models, 'gone'), { recursive: true });
    writePackage(models, 'fresh', 'fresh', '1');
    const s = await reg.reload();
    assert.deepEqual(s, { added: ['fresh'], updated: ['change'], removed: ['gone'], unchanged: ['keep'], errors: [] });
    assert.deepEqual(reg.names(), ['change', 'fresh', 'keep']);
    assert.equal(before.state, 'stopped');
    assert.notEqual(reg.deployment('change'), before);
    assert.equal(reg.status('change'), 'ready');
    assert.equal(reg.status('fresh'), 'ready');
    assert.deepEqual(
      state.listModels().map((m) => m.name),
      ['change', 'fresh', 'keep'],
    );
    assert.ok(fleet.workers.length >= 5);
    // A folder whose manifest now names a newer version: an update of the version it held.
    writePackage(models, 'keep', 'keep', '2');
    const s2 = await reg.reload();
    assert.deepEqual([s2.updated, s2.added, s2.removed], [['keep'], [], []]);
    assert.deepEqual(
      reg.versions('keep').map((v) => [v.version, v.status]),
      [['2', 'ready']],
    );
    // A package that became invalid keeps its last good version serving.
    writeFileSync(join(models, 'fresh', 'model.yaml'), 'name: fresh\nversion: 1\n');
    const s3 = await reg.reload();
    assert.equal(s3.errors.length, 1);
    assert.deepEqual(s3.removed, []);
    assert.equal(reg.status('fresh'), 'ready');
  });

  it('register adds a version from a folder outside the models dir; a reload keeps it; bad folders are refused', async () => {
    const { models, make } = setup();
    writePackage(models, 'v1', 'm', '1');
    const reg = make();
    await reg.init();
    const outside = tempDir('isomodel-registry-outside-');
    const dir = writePackage(outside, 'v2', 'm', '2');
    const pkg = reg.register(dir);
    assert.equal(pkg.manifest.version, '2');
    assert.equal(reg.status('m@2'), 'unloaded');
    const s = await reg.reload();
    assert.deepEqual(s.removed, []);
    assert.equal(reg.package('m@2').dir, dir);
    assert.throws(() => reg.register(join(outside, 'nope')), code('INVALID_REQUEST', /^no package folder at /));
    mkdirSync(join(outside, 'bad'));
    writeFileSync(join(outside, 'bad', 'model.yaml'), 'name: m\n');
    assert.throws(
      () => reg.register(join(outside, 'bad')),
      (e: IsoError) =>
        code('INVALID_REQUEST', /^invalid model package at /)(e) &&
        Array.isArray((e.details as { issues: unknown }).issues),
    );
    // The same version from another folder is refused.
    const dup = writePackage(outside, 'dup', 'm', '1');
    assert.throws(() => reg.register(dup), code('INVALID_REQUEST', /^m@1 is already provided by /));
    // remove forgets the outside version, keeps the models dir's.
    await reg.remove('m');
    assert.deepEqual(
      reg.versions('m').map((v) => v.version),
      ['1'],
    );
  });
});
