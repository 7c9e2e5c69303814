// The model registry (src/scheduler/registry.ts) without a gateway: real package folders in a
// temp models dir, a real SQLite state store, and in-memory workers (test/fake-worker.ts) behind
// each deployment, so versions load, fail, swap and drain in milliseconds. deployments.test.ts,
// reload.test.ts and scheduler.test.ts check the same through a real gateway and real workers;
// this file runs in a few seconds, for `npm run mutate -- scheduler-registry`.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, mock } from 'node:test';
import { IsoError } from '../src/errors.js';
import { ModelRegistry, type RegistryOptions } from '../src/scheduler/registry.js';
import { StateStore } from '../src/store/db.js';
import { tempDir, removeTempDirs, removeAtEnd, writeEchoPackage, loggerInto, flush } from './scheduler-fixture.js';
import { Fleet } from './fake-worker.js';
import { failFastIt } from './fail-fast.js';

const it = failFastIt(8000);
const stores: StateStore[] = [];
const registries: ModelRegistry[] = [];
after(async () => {
  for (const r of registries) await r.close();
  for (const s of stores) s.close();
  removeTempDirs();
});

function setup(opts: RegistryOptions = {}) {
  const models = tempDir('isomodel-registry-models-');
  const state = new StateStore(tempDir('isomodel-registry-state-'));
  stores.push(state);
  const fleet = new Fleet();
  fleet.auto = true;
  const lines: Record<string, unknown>[] = [];
  const logger = loggerInto(lines);
  const make = (): ModelRegistry => {
    const r = new ModelRegistry(models, fleet.create, logger, state, undefined, opts);
    registries.push(r);
    return r;
  };
  return { models, state, fleet, lines, make };
}

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
    writeEchoPackage(models, 'b1', 'beta', '1.9.0');
    writeEchoPackage(models, 'b2', 'beta', '1.10.0');
    writeEchoPackage(models, 'a1', 'alpha', '2.0.0');
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
    writeEchoPackage(models, 'm1', 'many', '1');
    writeEchoPackage(models, 'm2', 'many', '2');
    writeEchoPackage(models, 'lazy', 'lazy', '1', ['autoload: false']);
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
    writeEchoPackage(models, 'f', 'flaky', '1', ['autoload: false']);
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
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
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
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
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
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
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
    writeEchoPackage(models, 'v1', 'm', '1');
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
    writeEchoPackage(models, 'v1', 'm', '1', ['scaling: { min_replicas: 1, max_replicas: 3 }']);
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
    writeEchoPackage(models, 'keep', 'keep', '1');
    writeEchoPackage(models, 'gone', 'gone', '1');
    const ch = writeEchoPackage(models, 'change', 'change', '1');
    const reg = make();
    await reg.init();
    const before = reg.deployment('change')!;
    writeFileSync(join(ch, 'index.mjs'), 'export default { changed: true };\n');
    rmSync(join(models, 'gone'), { recursive: true });
    writeEchoPackage(models, 'fresh', 'fresh', '1');
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
    writeEchoPackage(models, 'keep', 'keep', '2');
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
    writeEchoPackage(models, 'v1', 'm', '1');
    const reg = make();
    await reg.init();
    const outside = tempDir('isomodel-registry-outside-');
    const dir = writeEchoPackage(outside, 'v2', 'm', '2');
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
    const dup = writeEchoPackage(outside, 'dup', 'm', '1');
    assert.throws(() => reg.register(dup), code('INVALID_REQUEST', /^m@1 is already provided by /));
    // remove forgets the outside version, keeps the models dir's.
    await reg.remove('m');
    assert.deepEqual(
      reg.versions('m').map((v) => v.version),
      ['1'],
    );
  });
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Polls `pred` every few ms; fails after `ms` (only a broken registry waits that long). */
async function until(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
/** Resolves with `p`'s value, or fails if it takes longer than `ms` (it would wait forever otherwise). */
async function within<T>(p: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
const gate = (): { open: () => void; plan: Promise<void> } => {
  let open!: () => void;
  const plan = new Promise<void>((r) => (open = r));
  return { open, plan };
};
const msgs = (lines: Record<string, unknown>[], msg: string) => lines.filter((l) => l.msg === msg);

describe('registry: start-up and close', () => {
  it('init waits only for the loads waitFor selects; initialLoadsSettled waits for the others; invalid packages are logged with file and issues', async () => {
    const { models, make, fleet, lines } = setup();
    writeEchoPackage(models, 'fast', 'fast', '1');
    writeEchoPackage(models, 'slow', 'slow', '1');
    mkdirSync(join(models, 'broken'));
    writeFileSync(join(models, 'broken', 'model.yaml'), 'name: Broken!\n');
    const slow = gate();
    fleet.plans.push('ok', slow.plan);
    const reg = make();
    await within(
      reg.init({ waitFor: (m) => m.name !== 'slow' }),
      'init (it must not wait for a model waitFor leaves out)',
    );
    assert.equal(fleet.workers[1]!.pkg.manifest.name, 'slow');
    assert.equal(reg.status('fast'), 'ready');
    assert.equal(reg.status('slow'), 'loading');
    let settled = false;
    const all = reg.initialLoadsSettled().then(() => (settled = true));
    await flush();
    assert.equal(settled, false, 'initialLoadsSettled waits for the slow load');
    slow.open();
    await all;
    assert.equal(reg.status('slow'), 'ready');
    const bad = msgs(lines, 'invalid model package');
    assert.equal(bad.length, 1);
    assert.equal(bad[0]!.level, 50);
    assert.equal(bad[0]!.file, join(models, 'broken', 'model.yaml'));
    assert.deepEqual(bad[0]!.issues, reg.invalidPackages()[0]!.issues);
    assert.ok((bad[0]!.issues as string[]).length > 0);
    const ready = msgs(lines, 'model ready').find((l) => l.model === 'fast')!;
    assert.equal(ready.version, '1');
    assert.ok(typeof ready.ms === 'number' && ready.ms >= 0 && ready.ms < 600_000, `ms: ${String(ready.ms)}`);
  });

  it('close stops every deployment of every version; none is left listed', async () => {
    const { models, make, fleet } = setup({ versionPolicy: () => ({ all: true }) });
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    writeEchoPackage(models, 'n', 'n', '1');
    const reg = make();
    await reg.init();
    const deps = reg.allDeployments();
    assert.equal(deps.length, 3);
    await reg.close();
    assert.deepEqual(
      deps.map((d) => d.state),
      ['stopped', 'stopped', 'stopped'],
    );
    assert.equal(fleet.live().length, 0);
    assert.deepEqual(reg.allDeployments(), []);
    assert.equal(reg.status('m@1'), 'unloaded');
  });

  it('close while a version is starting stops that start too: nothing is left running', async () => {
    const { models, make, fleet, lines } = setup();
    writeEchoPackage(models, 'm', 'm', '1', ['autoload: false']);
    writeEchoPackage(models, 'up', 'up', '1');
    const reg = make();
    await reg.init();
    const g = gate();
    fleet.plans.push(g.plan);
    const loading = reg.load('m');
    await flush();
    assert.equal(reg.status('m'), 'loading');
    await reg.close();
    g.open();
    await assert.rejects(loading, code('MODEL_NOT_LOADED', /^model m was unloaded while it was starting$/));
    // Said as what it is, not as a model that failed.
    assert.deepEqual(
      lines.filter((l) => l.model === 'm' && Number(l.level) >= 30).map((l) => [l.level, l.msg]),
      [[30, 'model load stopped: the registry is closing']],
    );
    assert.deepEqual(
      fleet.workers.map((w) => [w.pkg.manifest.name, w.state]),
      [
        ['up', 'exited'],
        ['m', 'exited'],
      ],
    );
    assert.deepEqual(reg.allDeployments(), []);
  });

  it('a registry comes back with the stored split, promoted version and pins ignored: 0-weight and missing versions are not loaded', async () => {
    const { models, make } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    writeEchoPackage(models, 'v3', 'm', '3');
    writeEchoPackage(models, 'v4', 'm', '4');
    writeEchoPackage(models, 'p1', 'p', '1');
    writeEchoPackage(models, 'p2', 'p', '2');
    const reg = make();
    await reg.init();
    await reg.setTraffic('m', { 2: 60, 3: 40, 1: 0 });
    await reg.promote('p', '1');
    await reg.close();
    rmSync(join(models, 'v3'), { recursive: true });
    const again = make();
    await again.init();
    // The split routes: version 2 serves a bare name, not the newest ready version (4).
    for (let i = 0; i < 5; i++) assert.equal(again.serving('m').version, '2');
    assert.equal(again.status('m@1'), 'unloaded', 'a version with weight 0 is not loaded');
    assert.equal(again.status('m@4'), 'ready');
    assert.equal(again.status('p@1'), 'ready', 'the promoted version loads');
    assert.equal(again.serving('p').version, '1');
    await again.close();
    // A promoted version whose folder is gone: the newest serves.
    rmSync(join(models, 'p1'), { recursive: true });
    const third = make();
    await third.init();
    assert.equal(third.serving('p').version, '2');
  });
});

describe('registry: reload in detail', () => {
  it('reload labels versions only where a model has several, removes a model whose folder now holds another, drains what the policy no longer wants, logs its summary', async () => {
    const { models, make, lines, state } = setup();
    writeEchoPackage(models, 'a', 'alpha', '1');
    writeEchoPackage(models, 'm1', 'm', '1');
    writeEchoPackage(models, 'm2', 'm', '2');
    const reg = make();
    await reg.init();
    const m2 = reg.deployment('m@2')!;
    // Folder a now holds another model; m1 is gone; m3 is new; a broken folder.
    rmSync(join(models, 'a'), { recursive: true });
    writeEchoPackage(models, 'a', 'beta', '5');
    rmSync(join(models, 'm1'), { recursive: true });
    writeEchoPackage(models, 'm3', 'm', '3');
    mkdirSync(join(models, 'broken'));
    writeFileSync(join(models, 'broken', 'model.yaml'), 'name: Broken!\n');
    const s = await reg.reload();
    assert.deepEqual(s, {
      added: ['beta', 'm@3'],
      updated: [],
      removed: ['alpha', 'm@1'],
      unchanged: ['m@2'],
      errors: reg.invalidPackages(),
    });
    assert.equal(s.errors.length, 1);
    assert.equal(s.errors[0]!.file, join(models, 'broken', 'model.yaml'));
    assert.ok(s.errors[0]!.issues.length > 0);
    assert.deepEqual(reg.names(), ['beta', 'm']);
    assert.deepEqual(
      state.listModels().map((m) => [m.name, m.version]),
      [
        ['beta', '5'],
        ['m', '3'],
      ],
    );
    // m@3 is the newest: it loaded and m@2, no longer wanted, drained.
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.status]),
      [
        ['3', 'ready'],
        ['2', 'unloaded'],
      ],
    );
    assert.equal(m2.state, 'stopped');
    const logged = msgs(lines, 'models reloaded');
    assert.equal(logged.length, 1);
    assert.deepEqual(
      [logged[0]!.added, logged[0]!.removed, logged[0]!.unchanged],
      [['beta', 'm@3'], ['alpha', 'm@1'], ['m@2']],
    );
    // An added folder deleted again: removed (it came from the models dir).
    rmSync(join(models, 'm3'), { recursive: true });
    const s2 = await reg.reload();
    assert.deepEqual(s2.removed, ['m@3']);
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.status]),
      [['2', 'ready']],
    );
  });

  it('the policy drains an unwanted version only once a wanted one is ready; pinned versions stay', async () => {
    const { models, make, fleet } = setup({ versionPolicy: (n) => (n === 'two' ? { latest: 2 } : { latest: 1 }) });
    writeEchoPackage(models, 't1', 'two', '1');
    writeEchoPackage(models, 't2', 'two', '2');
    writeEchoPackage(models, 'k1', 'k', '1');
    const reg = make();
    await reg.init();
    assert.deepEqual(
      reg.versions('two').map((v) => v.status),
      ['ready', 'ready'],
    );
    // two@3 fails; two@2 is still wanted and ready: two@1 drains.
    fleet.plans.push('fail');
    writeEchoPackage(models, 't3', 'two', '3');
    await reg.reload();
    assert.deepEqual(
      reg.versions('two').map((v) => [v.version, v.status]),
      [
        ['3', 'failed'],
        ['2', 'ready'],
        ['1', 'unloaded'],
      ],
    );
    // k@2 fails: nothing else would serve, so k@1 keeps serving.
    fleet.plans.push('fail');
    writeEchoPackage(models, 'k2', 'k', '2');
    await reg.reload();
    assert.equal(reg.status('k@2'), 'failed');
    assert.equal(reg.status('k@1'), 'ready');
    assert.equal(reg.serving('k').version, '1');
    // Pinned (loaded on request): k@1 stays beside the new k@3.
    await reg.load('k@1');
    writeEchoPackage(models, 'k3', 'k', '3');
    await reg.reload();
    assert.deepEqual(
      reg.versions('k').map((v) => [v.version, v.status]),
      [
        ['3', 'ready'],
        ['2', 'failed'],
        ['1', 'ready'],
      ],
    );
  });

  it('a folder edited to a new version inherits the default and the split; requests reaching the old deployment go to the new one', async () => {
    const { models, make, fleet } = setup({ versionPolicy: () => ({ all: true }) });
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    const reg = make();
    await reg.init();
    await reg.promote('m', '1');
    await reg.setTraffic('m', { 1: 30, 2: 70 });
    const history = reg.traffic('m').history;
    const old = reg.deployment('m@1')!;
    fleet.auto = false;
    const held = old.submit({ task: 'hold', items: [{ sequence: 'A', options: {} }] }).catch((e: Error) => e);
    fleet.auto = true;
    writeEchoPackage(models, 'v1', 'm', '3');
    const reloading = reg.reload();
    await until(() => old.state === 'draining', 'the old deployment to drain');
    const fresh = reg.deployment('m@3')!;
    const [out] = await old.submit({ task: 'echo', items: [{ sequence: 'GT', options: {} }] });
    assert.deepEqual(out, { echo: 'GT', by: fresh.replicaInfo()[0]!.id });
    fleet.workers.find((w) => w.open.length)!.answer();
    const s = await reloading;
    assert.ok(Array.isArray(await held));
    assert.deepEqual([s.updated, s.added, s.removed], [['m@3'], [], []]);
    assert.equal(old.state, 'stopped');
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: { 3: 30, 2: 70 }, history });
    // The other folder edited: its weight moves, the default (3) stays.
    writeEchoPackage(models, 'v2', 'm', '4');
    await reg.reload();
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: { 3: 30, 4: 70 }, history });
    // The moved version came from the models dir: deleting its folder removes it.
    rmSync(join(models, 'v1'), { recursive: true });
    const s3 = await reg.reload();
    assert.deepEqual(s3.removed, ['m@3']);
  });

  it('a folder edited to a new version while its old version is still starting: the new one serves, the late old one hands over and stops', async () => {
    const { models, make, fleet } = setup();
    writeEchoPackage(models, 'm', 'm', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    const g = gate();
    fleet.plans.push(g.plan);
    const loading = reg.load('m');
    await flush();
    writeEchoPackage(models, 'm', 'm', '2', ['autoload: false']);
    const reloading = reg.reload();
    await until(() => reg.deployment('m@2')?.state === 'ready', 'the new version to start');
    g.open();
    const late = await loading;
    const s = await reloading;
    assert.deepEqual([s.updated, s.added, s.removed], [['m'], [], []]);
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.status]),
      [['2', 'ready']],
    );
    // The old version's deployment is in no slot: it must not keep running.
    assert.equal(late.state, 'stopped');
    assert.deepEqual(
      fleet.live().map((w) => w.pkg.manifest.version),
      ['2'],
    );
    // A caller holding it is served by the new version.
    const [out] = await late.submit({ task: 'echo', items: [{ sequence: 'A', options: {} }] });
    assert.equal((out as { by: string }).by, reg.deployment('m@2')!.replicaInfo()[0]!.id);
  });

  it('a folder edited to a new version while another folder takes the old one: an add, both kept', async () => {
    const { models, make } = setup();
    writeEchoPackage(models, 'a', 'm', '1');
    const reg = make();
    await reg.init();
    writeEchoPackage(models, 'a', 'm', '2');
    writeEchoPackage(models, 'b', 'm', '1');
    const s = await reg.reload();
    assert.deepEqual(s.added, ['m@2']);
    assert.deepEqual(s.removed, []);
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.dir]),
      [
        ['2', join(models, 'a')],
        ['1', join(models, 'b')],
      ],
    );
  });

  it('an edited version that fails to start leaves the old one serving (a moved version and a changed package); an unloaded one is only updated', async () => {
    const { models, make, fleet, lines } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    const ch = writeEchoPackage(models, 'c', 'c', '1');
    const lazyDir = writeEchoPackage(models, 'lazy', 'lazy', '1', ['autoload: false']);
    writeEchoPackage(models, 'lz', 'lz', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    const m1 = reg.deployment('m@1')!;
    const c1 = reg.deployment('c')!;
    const n = fleet.workers.length;
    // A moved version fails.
    fleet.plans.push('fail');
    writeEchoPackage(models, 'v1', 'm', '2');
    const s = await reg.reload();
    assert.deepEqual(s.updated, ['m']);
    const moved = msgs(lines, 'new version failed to start; the old one keeps serving');
    assert.deepEqual(
      moved.map((l) => [l.level, l.model, l.from, l.to]),
      [[40, 'm', '1', '2']],
    );
    assert.equal(reg.serving('m'), m1);
    assert.equal(m1.state, 'ready');
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.status]),
      [
        ['2', 'failed'],
        ['1', 'ready'],
      ],
    );
    // A changed package fails.
    fleet.plans.push('fail');
    writeFileSync(join(ch, 'index.mjs'), 'export default { changed: true };\n');
    const s2 = await reg.reload();
    assert.deepEqual(s2.updated, ['c']);
    const swapped = msgs(lines, 'new package failed to start; the old one keeps serving');
    assert.deepEqual(
      swapped.map((l) => [l.level, l.model, l.version]),
      [[40, 'c', '1']],
    );
    assert.equal(reg.deployment('c'), c1);
    assert.equal(c1.state, 'ready');
    assert.equal(await echo(reg, 'c'), '1');
    // Unloaded versions changed or moved: updated, still unloaded, no worker started.
    const before = fleet.workers.length;
    writeFileSync(join(lazyDir, 'index.mjs'), 'export default { changed: true };\n');
    writeEchoPackage(models, 'lz', 'lz', '2', ['autoload: false']);
    const s3 = await reg.reload();
    // (The changed package that failed is tried again: it starts now.)
    assert.deepEqual(s3.updated, ['c', 'lazy', 'lz']);
    assert.notEqual(reg.deployment('c'), c1);
    assert.equal(c1.state, 'stopped');
    assert.equal(reg.status('lazy'), 'unloaded');
    assert.deepEqual(
      reg.versions('lz').map((v) => [v.version, v.status]),
      [['2', 'unloaded']],
    );
    assert.equal(fleet.workers.length, before + 1);
    assert.ok(before > n);
    // The new package is the one a load starts.
    await reg.load('lazy');
    assert.equal(reg.package('lazy').fingerprint, reg.deployment('lazy')!.pkg.fingerprint);
  });

  it('a registry without a state store reloads and removes models', async () => {
    const { models, fleet, lines } = setup();
    writeEchoPackage(models, 'gone', 'gone', '1');
    writeEchoPackage(models, 'stay', 'stay', '1');
    const logger = loggerInto(lines);
    const reg = new ModelRegistry(models, fleet.create, logger);
    registries.push(reg);
    await reg.init();
    const outside = writeEchoPackage(tempDir('isomodel-registry-outside-'), 'solo', 'solo', '1');
    reg.register(outside);
    await reg.remove('solo');
    await reg.remove('stay');
    assert.deepEqual(reg.names(), ['gone', 'stay']);
    rmSync(join(models, 'gone'), { recursive: true });
    const s = await reg.reload();
    assert.deepEqual(s.removed, ['gone']);
    assert.deepEqual(reg.names(), ['stay']);
  });
});

describe('registry: watching the models dir', () => {
  it('a change anywhere under the models dir reloads once (debounced); build folders are ignored; none after close', async () => {
    const { models, make, lines } = setup();
    const dir = writeEchoPackage(models, 'm', 'm', '1');
    const reg = make();
    await reg.init();
    reg.watch(25);
    reg.watch(25); // one watcher, however often called
    const reloads = () => msgs(lines, 'models reloaded');
    mkdirSync(join(models, '__pycache__'));
    mkdirSync(join(dir, '__pycache__'));
    mkdirSync(join(dir, 'node_modules'));
    mkdirSync(join(dir, '.venv'));
    writeFileSync(join(dir, '__pycache__', 'x.pyc'), 'x');
    await sleep(100);
    assert.equal(reloads().length, 0, 'changes in build folders reload nothing');
    // Several changes in a package folder (not the top level): one reload.
    writeFileSync(join(dir, 'index.mjs'), 'export default { a: 1 };\n');
    writeFileSync(join(dir, 'index.mjs'), 'export default { a: 2 };\n');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    await until(() => reloads().length > 0, 'a reload');
    await sleep(60);
    assert.equal(reloads().length, 1);
    assert.deepEqual(reloads()[0]!.updated, ['m']);
    // A change seen, then close before the debounce ends: no reload after close.
    const r2 = make();
    await r2.init({ load: false });
    r2.watch(40);
    writeFileSync(join(dir, 'index.mjs'), 'export default { a: 3 };\n');
    await sleep(10);
    await r2.close();
    await reg.close();
    const n = reloads().length;
    await sleep(80);
    assert.equal(reloads().length, n, 'no reload after close');
  });

  it('watcher errors and a models dir that cannot be watched or read are logged', async () => {
    const { models, make, lines, fleet } = setup();
    writeEchoPackage(models, 'm', 'm', '1');
    const reg = make();
    await reg.init({ load: false });
    reg.watch(10);
    (Reflect.get(reg, 'watcher') as import('node:fs').FSWatcher).emit(
      'error',
      new Error('EMFILE: too many open files'),
    );
    assert.deepEqual(
      msgs(lines, 'models dir watcher stopped').map((l) => [l.level, l.error]),
      [[40, 'EMFILE: too many open files']],
    );
    // The models dir replaced by a file: the reload the change starts fails, and says so.
    rmSync(models, { recursive: true });
    writeFileSync(models, 'not a folder');
    await until(() => msgs(lines, 'hot reload failed').length > 0, 'the failed reload to be logged');
    const failed = msgs(lines, 'hot reload failed')[0]!;
    assert.equal(failed.level, 50);
    assert.match(String(failed.error), /ENOTDIR/);
    await reg.close();
    const missing = new ModelRegistry(
      join(tempDir('isomodel-registry-empty-'), 'nowhere'),
      fleet.create,
      loggerInto(lines),
    );
    missing.watch();
    const cannot = msgs(lines, 'cannot watch the models dir; use POST /v1/models/reload');
    assert.equal(cannot.length, 1);
    assert.equal(cannot[0]!.level, 40);
    assert.match(String(cannot[0]!.error), /^ENOENT/);
  });
});

describe('registry: load, unload, register, scale, remove in detail', () => {
  it('deploy-time overrides: unchanged ones keep the deployment; a load in progress is shared; a failed load is stored as failed', async () => {
    const { models, make, fleet, state } = setup();
    writeEchoPackage(models, 'm', 'm', '1', ['autoload: false']);
    writeEchoPackage(models, 'f', 'f', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    const g = gate();
    fleet.plans.push(g.plan);
    const a = reg.load('m', { scaling: { max_replicas: 2 } });
    const b = reg.load('m', { scaling: { max_replicas: 3 } });
    await flush();
    g.open();
    const d = await a;
    assert.equal(await b, d, 'a load while loading shares the start');
    assert.equal(fleet.workers.length, 1);
    assert.equal(await reg.load('m', { scaling: { max_replicas: 3 } }), d, 'the same overrides again: same deployment');
    assert.equal(fleet.workers.length, 1);
    fleet.plans.push('fail');
    await assert.rejects(reg.load('f', { scaling: { max_replicas: 2 } }), code('MODEL_NOT_LOADED', /^boom$/));
    assert.deepEqual(
      state.listModels().map((m) => [m.name, m.state, m.last_error]),
      [
        ['f', 'failed', 'boom'],
        ['m', 'ready', null],
      ],
    );
  });

  it('missing host packages: needs_packages, said once with the hint, no worker started; docker packages are not checked', async () => {
    const { models, make, fleet, lines } = setup();
    const requires = [
      'requires:',
      '  commands: [isomodel-no-such-command]',
      '  packages: [isomodel-no-such-package]',
      'autoload: false',
    ];
    writeEchoPackage(models, 'np', 'np', '1', requires);
    writeEchoPackage(models, 'dk', 'dk', '1', [...requires, 'isolation: docker']);
    const reg = make();
    await reg.init();
    const hint =
      'apt-get install isomodel-no-such-package (missing: command isomodel-no-such-command), then POST /v1/models/np/load';
    await assert.rejects(reg.load('np'), (e: IsoError) => {
      code('MODEL_NOT_LOADED')(e);
      assert.equal(e.message, `model np needs packages: ${hint}`);
      assert.deepEqual(e.details, {
        status: 'needs_packages',
        requires: { missing: ['command isomodel-no-such-command'], packages: ['isomodel-no-such-package'], hint },
      });
      return true;
    });
    assert.equal(fleet.workers.length, 0);
    assert.equal(reg.status('np'), 'needs_packages');
    assert.equal(reg.lastError('np'), 'missing command isomodel-no-such-command');
    assert.equal(reg.requirements('np')?.hint, hint);
    assert.deepEqual(
      msgs(lines, `model np needs packages: ${hint}`).map((l) => [l.level, l.model, l.version, l.missing]),
      [[30, 'np', '1', ['command isomodel-no-such-command']]],
    );
    assert.equal(msgs(lines, 'model failed to load').length, 0);
    const d = await reg.load('dk');
    assert.equal(d.state, 'ready');
    assert.equal(reg.requirements('dk'), null);
    // Several missing: each named in the error kept for the models table.
    writeEchoPackage(models, 'np2', 'np2', '1', [
      'requires:',
      '  commands: [isomodel-no-such-command, isomodel-no-such-other]',
      'autoload: false',
    ]);
    await reg.reload();
    await assert.rejects(reg.load('np2'), code('MODEL_NOT_LOADED'));
    assert.equal(reg.lastError('np2'), 'missing command isomodel-no-such-command, command isomodel-no-such-other');
  });

  it('weights absent and the model refused to start: needs_weights, said with the hint; otherwise a failure', async () => {
    const weightsDir = tempDir('isomodel-registry-weights-');
    writeFileSync(join(weightsDir, 'w.bin'), 'x');
    const { models, make, fleet, lines } = setup({
      operatorEnv: (n) => (n === 'wp' ? { W_PATH: weightsDir } : undefined),
    });
    const weights = ['weights: { env: W_PATH, note: exported by hand }', 'env: { W_PATH: /nonexistent/isomodel-w }'];
    writeEchoPackage(models, 'w', 'w', '1', [...weights, 'autoload: false']);
    writeEchoPackage(models, 'wp', 'wp', '1', [...weights, 'autoload: false']);
    writeEchoPackage(models, 'nw', 'nw', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    const refused = (): Promise<void> => {
      const p = Promise.reject(new IsoError('MODEL_NOT_LOADED', 'no weights at W_PATH', { worker_code: 'WEIGHTS' }));
      p.catch(() => undefined);
      return p;
    };
    // Absent, refused by the model: needs_weights.
    fleet.plans.push(refused());
    await assert.rejects(reg.load('w'), code('MODEL_NOT_LOADED', /^no weights at W_PATH$/));
    assert.equal(reg.status('w'), 'needs_weights');
    const hint = reg.weights('w')!.hint;
    assert.throws(
      () => reg.serving('w'),
      (e: IsoError) =>
        code('MODEL_NOT_LOADED', /^model w needs weights: no weights at W_PATH$/)(e) &&
        (e.details as { status: string }).status === 'needs_weights',
    );
    assert.deepEqual(
      msgs(lines, `model w needs weights: ${hint}`).map((l) => [l.level, l.model, l.version, l.env, l.path]),
      [[30, 'w', '1', 'W_PATH', '/nonexistent/isomodel-w']],
    );
    assert.equal(msgs(lines, 'model failed to load').length, 0);
    // Absent, but the worker could not start at all (no worker_code): a failure.
    fleet.plans.push('fail');
    await assert.rejects(reg.load('w'), code('MODEL_NOT_LOADED', /^boom$/));
    assert.equal(reg.status('w'), 'failed');
    // Present (the operator's folder), refused: a failure.
    fleet.plans.push(refused());
    await assert.rejects(reg.load('wp'), code('MODEL_NOT_LOADED'));
    assert.equal(reg.status('wp'), 'failed');
    // None declared, refused: a failure.
    fleet.plans.push(refused());
    await assert.rejects(reg.load('nw'), code('MODEL_NOT_LOADED'));
    assert.equal(reg.status('nw'), 'failed');
    assert.deepEqual(
      msgs(lines, 'model failed to load').map((l) => [l.level, l.model, l.version, l.error]),
      [
        [50, 'w', '1', 'boom'],
        [50, 'wp', '1', 'no weights at W_PATH'],
        [50, 'nw', '1', 'no weights at W_PATH'],
      ],
    );
  });

  it('unload: a bare name unloads every version, name@version only it; the split loses it (share: false leaves the stored split)', async () => {
    const { models, make } = setup({ versionPolicy: () => ({ all: true }) });
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    writeEchoPackage(models, 'v3', 'm', '3');
    const reg = make();
    await reg.init();
    const stored = async () => {
      const r = make();
      await r.init({ load: false });
      return r.traffic('m').weights;
    };
    await reg.setTraffic('m', { 1: 50, 2: 50, 3: 0 });
    await reg.unload('m@1', { share: false });
    assert.deepEqual(
      reg.versions('m').map((v) => v.status),
      ['ready', 'ready', 'unloaded'],
    );
    assert.deepEqual(reg.traffic('m').weights, { 2: 50, 3: 0 });
    assert.deepEqual(await stored(), { 1: 50, 2: 50, 3: 0 });
    await reg.unload('m@2');
    assert.equal(reg.traffic('m').weights, null, 'no weight above 0 left: no split');
    assert.equal(await stored(), null);
    // No split: unloading one version touches no routing.
    await reg.unload('m@3');
    assert.deepEqual(
      reg.versions('m').map((v) => v.status),
      ['unloaded', 'unloaded', 'unloaded'],
    );
    await reg.load('m@1');
    await reg.load('m@3');
    await reg.unload('m');
    assert.deepEqual(
      reg.versions('m').map((v) => [v.status, v.pinned]),
      [
        ['unloaded', false],
        ['unloaded', false],
        ['unloaded', false],
      ],
    );
    assert.deepEqual(reg.allDeployments(), []);
  });

  it('unload while a load is starting: the started deployment stops, nothing stays running', async () => {
    const { models, make, fleet } = setup();
    writeEchoPackage(models, 'm', 'm', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    const g = gate();
    fleet.plans.push(g.plan);
    const loading = reg.load('m');
    await flush();
    const unloading = reg.unload('m');
    g.open();
    const d = await loading;
    await unloading;
    assert.equal(d.state, 'stopped');
    assert.equal(reg.status('m'), 'unloaded');
    assert.equal(fleet.live().length, 0);
  });

  it('register: a new model, the same folder again (the deployment kept), the external flag by path; remove forgets an outside-only model', async () => {
    const { models, make, state } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    const reg = make();
    await reg.init();
    const d = reg.deployment('m@1')!;
    assert.equal(reg.register('v1').manifest.version, '1');
    assert.equal(reg.register(join(models, 'v1')).dir, join(models, 'v1'));
    assert.equal(reg.deployment('m@1'), d);
    assert.equal(reg.status('m@1'), 'ready');
    // A sibling folder whose name starts like the models dir's is outside it: a reload keeps it.
    const sibling = `${models}-sibling`;
    removeAtEnd(sibling);
    const solo = writeEchoPackage(sibling, 'solo', 'solo', '1');
    reg.register(solo);
    assert.equal(reg.status('solo'), 'unloaded');
    // A folder put in the models dir and registered: a reload removes it once it is deleted.
    const inside = writeEchoPackage(models, 'v2', 'm', '2');
    reg.register(inside);
    rmSync(inside, { recursive: true });
    const s = await reg.reload();
    assert.deepEqual([s.removed, s.unchanged], [['m@2'], ['m', 'solo']]);
    assert.deepEqual(reg.names(), ['m', 'solo']);
    await reg.remove('solo');
    assert.deepEqual(reg.names(), ['m']);
    assert.throws(() => reg.status('solo'), code('MODEL_NOT_FOUND'));
    assert.deepEqual(
      state.listModels().map((m) => m.name),
      ['m'],
    );
  });

  it('scale is remembered for the next load: n replicas, or 0 (min 0, max the manifest max); it pins the version', async () => {
    const { models, make } = setup();
    writeEchoPackage(models, 'v1', 'm', '1', ['scaling: { min_replicas: 1, max_replicas: 3 }']);
    const reg = make();
    await reg.init();
    await reg.scale('m', 2);
    assert.equal(reg.versions('m')[0]!.pinned, true);
    await reg.unload('m');
    const two = await reg.load('m');
    assert.equal(two.replicaInfo().length, 2);
    assert.deepEqual([two.scaling.min_replicas, two.scaling.max_replicas], [2, 2]);
    await reg.scale('m', 0);
    await reg.unload('m');
    const zero = await reg.load('m');
    assert.deepEqual([zero.scaling.min_replicas, zero.scaling.max_replicas], [0, 3]);
  });

  it('remove clears the history and the stored split (share: false leaves the stored split)', async () => {
    const { models, make } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    const reg = make();
    await reg.init();
    const stored = async () => {
      const r = make();
      await r.init({ load: false });
      return r.traffic('m');
    };
    await reg.promote('m', '1');
    await reg.setTraffic('m', { 1: 20, 2: 80 });
    await reg.remove('m', { share: false });
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: null, history: [] });
    assert.deepEqual((await stored()).weights, { 1: 20, 2: 80 });
    await reg.setTraffic('m', { 1: 20, 2: 80 });
    await reg.remove('m');
    assert.deepEqual(await stored(), { default_version: '2', weights: null, history: [] });
  });
});

describe('registry: a deployment that failed after it started', () => {
  it('a load starts a fresh deployment and stops the failed one; a changed package replaces it on reload', async () => {
    const { models, make, fleet, lines } = setup();
    const mDir = writeEchoPackage(models, 'm', 'm', '1');
    writeEchoPackage(models, 'n', 'n', '1');
    const reg = make();
    await reg.init();
    const m1 = reg.deployment('m')!;
    const n1 = reg.deployment('n')!;
    // Both workers crash and every restart fails: the deployments give up (failed).
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      for (let i = 0; i < 10; i++) fleet.plans.push('fail');
      for (const w of fleet.live()) w.crash();
      for (let i = 0; i < 8 && (m1.state !== 'failed' || n1.state !== 'failed'); i++) {
        mock.timers.tick(10_000);
        await flush();
      }
    } finally {
      mock.timers.reset();
    }
    assert.deepEqual([m1.state, n1.state], ['failed', 'failed']);
    assert.equal(reg.status('n'), 'failed');
    const n2 = await reg.load('n');
    assert.notEqual(n2, n1);
    assert.deepEqual([n1.state, n2.state], ['stopped', 'ready']);
    assert.equal(reg.serving('n'), n2);
    // A changed package for the failed deployment is loaded as such (no blue/green beside a failed
    // one): when it fails too, the model stays failed with the new package in its slot.
    fleet.plans.push('fail');
    writeFileSync(join(mDir, 'index.mjs'), 'export default { broken: true };\n');
    assert.deepEqual((await reg.reload()).updated, ['m']);
    assert.equal(reg.status('m'), 'failed');
    assert.notEqual(reg.package('m').fingerprint, m1.pkg.fingerprint);
    assert.equal(msgs(lines, 'new package failed to start; the old one keeps serving').length, 0);
    writeFileSync(join(mDir, 'index.mjs'), 'export default { fixed: true };\n');
    const s = await reg.reload();
    assert.deepEqual(s.updated, ['m']);
    const m2 = reg.deployment('m')!;
    assert.notEqual(m2, m1);
    assert.deepEqual([m1.state, m2.state], ['stopped', 'ready']);
    assert.equal(m2.pkg.fingerprint, reg.package('m').fingerprint);
    assert.equal(await echo(reg, 'm'), '1');
  });
});
