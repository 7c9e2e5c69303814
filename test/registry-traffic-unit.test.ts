// The registry's traffic layer (src/scheduler/registry-traffic.ts) and what it reports
// (src/scheduler/registry-state.ts), without a gateway: real package folders in a temp models
// dir, a real SQLite state store, in-memory workers (test/fake-worker.ts). Splits, promotion,
// rollback, rolling updates and routing another gateway changed, each checked by what an operator
// sees: the routing itself, the stored rows a new registry comes up with, the log lines, the
// status and the errors with what to do. registry-unit.test.ts covers discovery, loading and
// reload; both run for `npm run mutate -- scheduler-registry`, so this file stays within seconds.
import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import { IsoError } from '../src/errors.js';
import type { ModelPackage } from '../src/manifest/load.js';
import { ModelRegistry, type RegistryOptions } from '../src/scheduler/registry.js';
import type { TrafficBackend, TrafficState } from '../src/scheduler/traffic-store.js';
import { StateStore } from '../src/store/db.js';
import type { WorkerHandle } from '../src/worker/types.js';
import { tempDir, removeTempDirs, writeEchoPackage, loggerInto, flush, type LogLine } from './scheduler-fixture.js';
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

interface SetupOptions extends RegistryOptions {
  /** No SQLite state store behind the registries (routing kept in memory only). */
  noStore?: boolean;
  /** Wraps each worker the fleet makes (a worker that refuses to start for want of weights). */
  wrap?: (w: WorkerHandle, pkg: ModelPackage) => WorkerHandle;
}

function setup(opts: SetupOptions = {}) {
  const models = tempDir('isomodel-registry-traffic-models-');
  const state = new StateStore(tempDir('isomodel-registry-traffic-state-'));
  stores.push(state);
  const fleet = new Fleet();
  fleet.auto = true;
  const lines: LogLine[] = [];
  const logger = loggerInto(lines);
  const create = (pkg: ModelPackage, id: string): WorkerHandle => {
    const w = fleet.create(pkg, id);
    return opts.wrap ? opts.wrap(w, pkg) : w;
  };
  const make = (): ModelRegistry => {
    const r = new ModelRegistry(models, create, logger, opts.noStore ? undefined : state, undefined, opts);
    registries.push(r);
    return r;
  };
  /** The model's row in the traffic table, as stored. */
  const row = (name: string) =>
    state.db.prepare('SELECT default_version, weights, history FROM model_traffic WHERE name = ?').get(name);
  /** The log lines with message `msg`, each cut to `fields`. */
  const logged = (msg: string, fields: string[]): LogLine[] =>
    lines.filter((l) => l.msg === msg).map((l) => Object.fromEntries(fields.map((f) => [f, l[f]])));
  return { models, state, fleet, lines, make, row, logged };
}

/** A traffic backend that records its writes (a shared store's stand-in), optionally failing them in the background. */
class RecordingBackend implements TrafficBackend {
  readonly saves: [string, TrafficState][] = [];
  readonly deletes: string[] = [];
  fail: Error | null = null;
  constructor(private readonly initial = new Map<string, TrafficState>()) {}
  load(): Map<string, TrafficState> {
    return new Map(this.initial);
  }
  save(name: string, s: TrafficState): void | Promise<void> {
    this.saves.push([name, structuredClone(s)]);
    if (this.fail) return Promise.reject(this.fail);
  }
  delete(name: string): void {
    this.deletes.push(name);
  }
}

/** An IsoError with exactly this code, message and details. */
const exactly = (c: string, message: string, details?: unknown) => (e: unknown) => {
  assert.ok(e instanceof IsoError, String(e));
  assert.equal(e.code, c, e.message);
  assert.equal(e.message, message);
  assert.deepEqual(e.details, details);
  return true;
};
const state = (entries: Record<string, TrafficState>) => new Map(Object.entries(entries));
const CHANGED = 'traffic routing changed through another gateway';

describe('registry traffic: splits, pinDefault, promote, rollback, rolling update', () => {
  it('a split: unknown versions refused with the versions listed; zero weights kept but never loaded; logged, stored, restored', async () => {
    const { models, make, fleet, row, logged } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    writeEchoPackage(models, 'v3', 'm', '3');
    const reg = make();
    await reg.init();
    assert.equal(fleet.workers.length, 1);
    await assert.rejects(
      reg.setTraffic('m', { 7: 1, 3: 5, 9: 2 }),
      exactly('INVALID_REQUEST', 'model m has no version 7, 9', { versions: ['3', '2', '1'] }),
    );
    await assert.rejects(
      reg.setTraffic('m', { 1: 0, 2: 0 }),
      exactly('INVALID_REQUEST', 'at least one version needs a weight above 0'),
    );
    assert.equal(fleet.workers.length, 1, 'a refused split loads nothing');
    await reg.setTraffic('m', { 1: 100, 2: 0 });
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.status, v.default, v.weight]),
      [
        ['3', 'ready', true, 0],
        ['2', 'unloaded', false, 0],
        ['1', 'ready', false, 100],
      ],
    );
    assert.equal(fleet.workers.length, 2, 'the version weighted 0 was not started');
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: { 1: 100, 2: 0 }, history: [] });
    assert.equal(reg.serving('m').version, '1');
    assert.deepEqual(logged('traffic split set', ['model', 'weights']), [{ model: 'm', weights: { 1: 100, 2: 0 } }]);
    assert.deepEqual(row('m'), { default_version: null, weights: '{"1":100,"2":0}', history: '[]' });
    // A registry over the same state store comes up with the split, the zero weight still unloaded.
    const again = make();
    await again.init();
    assert.deepEqual(again.traffic('m'), { default_version: '3', weights: { 1: 100, 2: 0 }, history: [] });
    assert.deepEqual(
      again.versions('m').map((v) => v.status),
      ['ready', 'unloaded', 'ready'],
    );
    await reg.setTraffic('m', null);
    assert.equal(reg.traffic('m').weights, null);
    assert.deepEqual(row('m'), { default_version: null, weights: null, history: '[]' });
    assert.deepEqual(logged('traffic split set', ['model', 'weights'])[1], { model: 'm', weights: null });
  });

  it('pinDefault makes the default explicit and stores it once; a newer version found later takes no traffic', async () => {
    const { models, make, row } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    const reg = make();
    const backend = new RecordingBackend();
    reg.useTrafficStore(backend, () => undefined);
    await reg.init();
    assert.equal(reg.pinDefault('m'), '2');
    assert.equal(reg.pinDefault('m'), '2');
    assert.deepEqual(backend.saves, [['m', { defaultVersion: '2', history: [] }]], 'stored once, not again unchanged');
    // Over SQLite: stored, and a registry started after version 3 appeared keeps 2 as the default.
    const first = make();
    await first.init();
    assert.equal(row('m'), undefined);
    assert.equal(first.pinDefault('m'), '2');
    assert.deepEqual(row('m'), { default_version: '2', weights: null, history: '[]' });
    writeEchoPackage(models, 'v3', 'm', '3');
    const later = make();
    await later.init();
    assert.equal(later.status('m@3'), 'ready');
    assert.equal(later.defaultVersion('m'), '2');
    assert.equal(later.serving('m').version, '2');
  });

  it('promote and rollback: the history, the stored row a new registry restores, and the log lines', async () => {
    const { models, make, row, logged } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    const reg = make();
    await reg.init();
    await reg.setTraffic('m', { 1: 50, 2: 50 });
    await reg.promote('m', '1');
    assert.deepEqual(reg.traffic('m'), { default_version: '1', weights: null, history: ['2'] }, 'the split ends');
    assert.deepEqual(row('m'), { default_version: '1', weights: null, history: '["2"]' });
    // Promoting the default again adds nothing to the history.
    await reg.promote('m', '1');
    assert.deepEqual(reg.traffic('m').history, ['2']);
    assert.deepEqual(logged('version promoted', ['model', 'version', 'previous']), [
      { model: 'm', version: '1', previous: '2' },
      { model: 'm', version: '1', previous: '1' },
    ]);
    const again = make();
    await again.init();
    assert.deepEqual(again.traffic('m'), { default_version: '1', weights: null, history: ['2'] });
    assert.equal(again.serving('m').version, '1');
    assert.equal(await reg.rollback('m'), '2');
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: null, history: [] });
    assert.deepEqual(row('m'), { default_version: '2', weights: null, history: '[]' });
    assert.deepEqual(logged('rolled back', ['model', 'from', 'to']), [{ model: 'm', from: '1', to: '2' }]);
  });

  it('promoting a version that was not loaded records the one that served before; rollback returns to it', async () => {
    // Before, the previous default was taken after the promoted version had loaded: by then the
    // newest ready version, the promoted one itself, so the version it replaced was never recorded.
    const { models, make, fleet, logged } = setup({ versionPolicy: () => ({ specific: ['1'] }) });
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    writeEchoPackage(models, 'v3', 'm', '3');
    const reg = make();
    await reg.init();
    assert.equal(reg.defaultVersion('m'), '1');
    await reg.promote('m', '2');
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: null, history: ['1'] });
    assert.deepEqual(logged('version promoted', ['version', 'previous']), [{ version: '2', previous: '1' }]);
    assert.equal(await reg.rollback('m'), '1');
    assert.deepEqual(reg.traffic('m'), { default_version: '1', weights: null, history: [] });
    // Another promotion while version 3 loads: that one is what 3 replaces.
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const slow = reg.promote('m', '3');
    await flush();
    await reg.promote('m', '2');
    open();
    await slow;
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: null, history: ['1', '2'] });
    assert.equal(await reg.rollback('m'), '2');
  });

  it('a rolling update pins the new version, unpins the old, stores the routing unless share is false, and says so', async () => {
    const { models, make, logged, fleet } = setup({ versionPolicy: () => ({ specific: ['1'] }) });
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    writeEchoPackage(models, 'v3', 'm', '3');
    const reg = make();
    const backend = new RecordingBackend();
    reg.useTrafficStore(backend, () => undefined);
    await reg.init();
    await reg.load('m@1');
    assert.equal(reg.versions('m')[2]!.pinned, true);
    assert.deepEqual(await reg.rollingUpdate('m', '2'), { previous: ['1'] });
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.status, v.pinned]),
      [
        ['3', 'unloaded', false],
        ['2', 'ready', true],
        ['1', 'unloaded', false],
      ],
    );
    assert.deepEqual(backend.saves, [['m', { defaultVersion: '2', history: ['1'] }]]);
    assert.deepEqual(logged('rolling update done', ['model', 'version', 'previous']), [
      { model: 'm', version: '2', previous: ['1'] },
    ]);
    // Applied from another gateway's change (share: false): routing moves here, the shared store is left alone.
    assert.deepEqual(await reg.rollingUpdate('m', '3', undefined, { share: false }), { previous: ['2'] });
    assert.equal(backend.saves.length, 1);
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: null, history: ['1', '2'] });
    assert.deepEqual(
      reg.versions('m').map((v) => [v.version, v.pinned]),
      [
        ['3', true],
        ['2', false],
        ['1', false],
      ],
    );
    assert.equal(fleet.live().length, 1);
  });
});

describe('registry traffic: routing changed through another gateway (applyTraffic)', () => {
  it('a changed split applies and loads its weighted versions; an unchanged model is left alone; one absent goes back to no routing', async () => {
    const { models, make, logged, lines } = setup();
    writeEchoPackage(models, 'm1', 'm', '1.0.0');
    writeEchoPackage(models, 'm2', 'm', '2.0.0');
    writeEchoPackage(models, 'n1', 'n', '1');
    writeEchoPackage(models, 'n2', 'n', '2');
    writeEchoPackage(models, 'n3', 'n', '3');
    writeEchoPackage(models, 'o1', 'o', '1');
    writeEchoPackage(models, 'o2', 'o', '2');
    const reg = make();
    await reg.init();
    await reg.setTraffic('m', { '2.0.0': 30, '1.0.0': 70 });
    await reg.promote('o', '1');
    const before = lines.length;
    reg.applyTraffic(
      state({
        // The same split, its versions in another order: unchanged.
        m: { history: [], weights: { '1.0.0': 70, '2.0.0': 30 } },
        n: { history: [], weights: { 1: 70, 2: 0, 9: 5 } },
      }),
    );
    // Version 1 of n is loading: until it is ready, requests go to the default.
    assert.equal(reg.status('n@1'), 'loading');
    assert.equal(reg.serving('n').version, '3');
    assert.deepEqual(reg.traffic('n'), { default_version: '3', weights: { 1: 70, 2: 0, 9: 5 }, history: [] });
    assert.deepEqual(reg.traffic('o'), { default_version: '2', weights: null, history: [] });
    assert.deepEqual(reg.traffic('m'), {
      default_version: '2.0.0',
      weights: { '2.0.0': 30, '1.0.0': 70 },
      history: [],
    });
    await flush();
    assert.deepEqual(
      reg.versions('n').map((v) => [v.version, v.status]),
      [
        ['3', 'ready'],
        ['2', 'unloaded'],
        ['1', 'ready'],
      ],
    );
    for (let i = 0; i < 4; i++) assert.equal(reg.serving('n').version, '1');
    assert.deepEqual(logged(CHANGED, ['model', 'weights', 'default_version']), [
      { model: 'n', weights: { 1: 70, 2: 0, 9: 5 }, default_version: null },
      { model: 'o', weights: null, default_version: null },
    ]);
    assert.deepEqual(
      lines.slice(before).filter((l) => l.level === 40),
      [],
      'nothing warned: an unknown version in the split is not loaded',
    );
    // The same state again changes nothing.
    reg.applyTraffic(
      state({
        m: { history: [], weights: { '1.0.0': 70, '2.0.0': 30 } },
        n: { history: [], weights: { 1: 70, 2: 0, 9: 5 } },
      }),
    );
    assert.equal(logged(CHANGED, ['model']).length, 2);
  });

  it('a default or a history changed there applies here; a version promoted there is loaded here first; an unknown one is ignored', async () => {
    const { models, make, logged, fleet } = setup({
      versionPolicy: (n) => (n === 'a' ? { all: true } : { latest: 1 }),
    });
    writeEchoPackage(models, 'a1', 'a', '1');
    writeEchoPackage(models, 'a2', 'a', '2');
    writeEchoPackage(models, 'm1', 'm', '1');
    writeEchoPackage(models, 'm2', 'm', '2');
    writeEchoPackage(models, 'm3', 'm', '3');
    const reg = make();
    await reg.init();
    // a: both versions ready, so a change of its default alone applies at once.
    reg.applyTraffic(state({ a: { defaultVersion: '1', history: [] } }));
    assert.deepEqual(reg.traffic('a'), { default_version: '1', weights: null, history: [] });
    reg.applyTraffic(state({ a: { defaultVersion: '1', history: ['2'] } }));
    assert.deepEqual(reg.traffic('a'), { default_version: '1', weights: null, history: ['2'] });
    // m: version 1 is not loaded; it loads before it becomes the default here.
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const promoted = state({
      a: { defaultVersion: '1', history: ['2'] },
      m: { defaultVersion: '1', history: ['3'] },
    });
    reg.applyTraffic(promoted);
    assert.equal(reg.status('m@1'), 'loading');
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: null, history: [] });
    assert.equal(reg.serving('m').version, '3');
    open();
    await flush();
    assert.deepEqual(reg.traffic('m'), { default_version: '1', weights: null, history: ['3'] });
    assert.equal(reg.serving('m').version, '1');
    assert.deepEqual(logged(CHANGED, ['model', 'weights', 'default_version']), [
      { model: 'a', weights: null, default_version: '1' },
      { model: 'a', weights: null, default_version: '1' },
      { model: 'm', weights: null, default_version: '1' },
    ]);
    // A ready version promoted there applies at once.
    reg.applyTraffic(state({ a: promoted.get('a')!, m: { defaultVersion: '3', history: ['3', '1'] } }));
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: null, history: ['3', '1'] });
    // A version this gateway does not have: stored as given, the default here is the newest ready one.
    reg.applyTraffic(state({ a: promoted.get('a')!, m: { defaultVersion: '9', history: [] } }));
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: null, history: [] });
    assert.equal(reg.serving('m').version, '3');
  });

  it('versions that fail to load for a change made there: the default here stays, each failure is said with its version', async () => {
    const { models, make, logged, fleet } = setup();
    writeEchoPackage(models, 'm1', 'm', '1');
    writeEchoPackage(models, 'm2', 'm', '2');
    writeEchoPackage(models, 'm3', 'm', '3');
    const reg = make();
    await reg.init();
    fleet.plans.push('fail');
    reg.applyTraffic(state({ m: { defaultVersion: '2', history: ['3'] } }));
    await flush();
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: null, history: [] });
    assert.deepEqual(
      logged('cannot load the version promoted through another gateway; the default here stays as it was', [
        'model',
        'version',
        'error',
        'level',
      ]),
      [{ model: 'm', version: '2', error: 'boom', level: 40 }],
    );
    fleet.plans.push('fail');
    reg.applyTraffic(state({ m: { history: [], weights: { 1: 60, 3: 40 } } }));
    await flush();
    assert.deepEqual(reg.traffic('m'), { default_version: '3', weights: { 1: 60, 3: 40 }, history: [] });
    assert.deepEqual(
      logged('cannot load a version the shared traffic split routes to', ['model', 'version', 'error', 'level']),
      [{ model: 'm', version: '1', error: 'boom', level: 40 }],
    );
    // The weighted version that failed is skipped: all requests go to the one that is ready.
    for (let i = 0; i < 4; i++) assert.equal(reg.serving('m').version, '3');
  });

  it('closing: nothing is served while the registry stops, and a promoted version that loads afterwards changes nothing', async () => {
    const { models, make, logged, fleet } = setup();
    writeEchoPackage(models, 'm1', 'm', '1');
    writeEchoPackage(models, 'm2', 'm', '2');
    const reg = make();
    await reg.init();
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    reg.applyTraffic(state({ m: { defaultVersion: '1', history: ['2'] } }));
    assert.equal(reg.status('m@1'), 'loading');
    const closing = reg.close();
    assert.throws(() => reg.serving('m'), exactly('MODEL_NOT_LOADED', 'model m is not loaded; POST /v1/models/m/load'));
    await closing;
    open();
    await flush();
    assert.deepEqual(reg.traffic('m').history, []);
    assert.deepEqual(logged(CHANGED, ['model']), []);
    await reg.close();
  });
});

describe('registry state: without a store, names cut in errors, weights and packages missing, a shared store', () => {
  it('without a state store: routing, status and weights work, nothing is written', async () => {
    const { models, make, state: db } = setup({ noStore: true });
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    const reg = make();
    assert.deepEqual(reg.invalidPackages(), [], 'none before init');
    await reg.init();
    await reg.setTraffic('m', { 1: 1, 2: 1 });
    await reg.promote('m', '1');
    assert.deepEqual(await reg.rollingUpdate('m', '2'), { previous: ['1'] });
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: null, history: ['2', '1'] });
    assert.equal(reg.status('m'), 'ready');
    assert.equal(reg.weights('m'), null);
    assert.deepEqual(db.listModels(), []);
  });

  it('errors cut long names and versions; a deployment of an unknown version is undefined', async () => {
    const { models, make } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    const reg = make();
    await reg.init();
    assert.throws(() => reg.status('A'.repeat(100)), exactly('MODEL_NOT_FOUND', `no model named "${'A'.repeat(80)}"`));
    assert.throws(
      () => reg.status(`m@${'x'.repeat(100)}`),
      exactly('MODEL_NOT_FOUND', `model m has no version "${'x'.repeat(64)}"`, { versions: ['1'] }),
    );
    assert.equal(reg.deployment('m@9'), undefined);
    assert.equal(reg.deployment('m@1')?.version, '1');
  });

  it('needs_weights and needs_packages: status, serving errors that say what to do, weights and requirements', async () => {
    const {
      models,
      make,
      state: db,
    } = setup({
      operatorEnv: (n) => (n === 'heavy' ? { HEAVY_PATH: '/nonexistent/isomodel-heavy-weights' } : undefined),
      // The heavy model's worker refuses to start (a worker's fatal, as a model without its weights does).
      wrap: (w, pkg) => {
        if (pkg.manifest.name === 'heavy')
          w.start = () =>
            Promise.reject(new IsoError('MODEL_NOT_LOADED', 'no weights found', { worker_code: 'MODEL_SETUP' }));
        return w;
      },
    });
    writeEchoPackage(models, 'heavy', 'heavy', '1', ['weights: { env: HEAVY_PATH, source: "hf:org/heavy" }']);
    writeEchoPackage(models, 'pk', 'pk', '1', [
      'requires: { commands: [isomodel-missing-tool], packages: [isomodel-tool] }',
    ]);
    writeEchoPackage(models, 'm', 'm', '1');
    const reg = make();
    await reg.init();
    const hint =
      'set HEAVY_PATH to the weights folder (model_env: {heavy: {HEAVY_PATH: /path/to/weights}} in isomodel.config.yaml)' +
      ' or put them in /nonexistent/isomodel-heavy-weights, then POST /v1/models/heavy/load;' +
      ' or fetch them: isomodel pull --for heavy (from hf:org/heavy)';
    assert.equal(reg.status('heavy'), 'needs_weights');
    assert.deepEqual(
      reg.versions('heavy').map((v) => [v.status, v.last_error]),
      [['needs_weights', 'no weights found']],
    );
    assert.throws(
      () => reg.serving('heavy'),
      exactly('MODEL_NOT_LOADED', 'model heavy needs weights: no weights found', {
        status: 'needs_weights',
        weights: { env: 'HEAVY_PATH', path: '/nonexistent/isomodel-heavy-weights', source: 'hf:org/heavy', hint },
      }),
    );
    assert.deepEqual(reg.weights('heavy'), {
      env: 'HEAVY_PATH',
      path: '/nonexistent/isomodel-heavy-weights',
      present: false,
      source: 'hf:org/heavy',
      hint,
    });
    assert.equal(reg.requirements('heavy'), null);
    const requires = {
      missing: ['command isomodel-missing-tool'],
      packages: ['isomodel-tool'],
      hint: 'apt-get install isomodel-tool (missing: command isomodel-missing-tool), then POST /v1/models/pk/load',
    };
    assert.equal(reg.status('pk@1'), 'needs_packages');
    assert.deepEqual(reg.requirements('pk'), requires);
    assert.throws(
      () => reg.serving('pk@1'),
      exactly('MODEL_NOT_LOADED', `model pk@1 needs packages: ${requires.hint}`, {
        status: 'needs_packages',
        requires,
      }),
    );
    assert.equal(reg.weights('pk'), null);
    assert.equal(reg.requirements('m'), null);
    assert.deepEqual(
      db.listModels().map((m) => [m.name, m.state, m.last_error]),
      [
        ['heavy', 'needs_weights', 'no weights found'],
        ['m', 'ready', null],
        ['pk', 'needs_packages', 'missing command isomodel-missing-tool'],
      ],
    );
  });

  it('a failed deployment is still the one served (its requests say why); the models table keeps the last error', async (t) => {
    const { models, make, fleet, state: db } = setup();
    writeEchoPackage(models, 'm', 'm', '1');
    writeEchoPackage(models, 'f', 'flaky', '1', ['autoload: false']);
    const reg = make();
    await reg.init();
    fleet.plans.push('fail');
    await assert.rejects(reg.load('flaky'), exactly('MODEL_NOT_LOADED', 'boom'));
    assert.deepEqual(
      db.listModels().map((m) => [m.name, m.state, m.last_error]),
      [
        ['flaky', 'failed', 'boom'],
        ['m', 'ready', null],
      ],
    );
    // m's only replica crashes and every restart fails: the deployment gives up (backoff under mock timers).
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const d = reg.deployment('m')!;
    for (let i = 0; i < 5; i++) fleet.plans.push('fail');
    fleet.workers.find((w) => w.pkg.manifest.name === 'm')!.crash();
    for (let i = 0; i < 6 && d.state !== 'failed'; i++) {
      t.mock.timers.tick(10_000);
      await flush();
    }
    assert.equal(d.state, 'failed');
    assert.equal(reg.status('m'), 'failed');
    assert.equal(reg.serving('m'), d);
    await assert.rejects(
      d.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] }),
      exactly('MODEL_NOT_LOADED', 'model m failed to load: boom'),
    );
  });

  it('a shared traffic store: routing comes up from it, writes go to it, a failed background write is reported', async () => {
    const { models, make } = setup();
    writeEchoPackage(models, 'v1', 'm', '1');
    writeEchoPackage(models, 'v2', 'm', '2');
    const reg = make();
    const backend = new RecordingBackend(state({ m: { defaultVersion: '1', history: ['2'] } }));
    const errors: string[] = [];
    reg.useTrafficStore(backend, (msg) => errors.push(msg));
    await reg.init();
    assert.deepEqual(reg.traffic('m'), { default_version: '1', weights: null, history: ['2'] });
    assert.equal(reg.serving('m').version, '1');
    backend.fail = new Error('connection refused');
    await reg.promote('m', '2');
    await flush();
    assert.deepEqual(backend.saves, [['m', { defaultVersion: '2', history: ['2', '1'] }]]);
    assert.deepEqual(errors, ['traffic routing not saved to the shared store: connection refused']);
    assert.deepEqual(reg.traffic('m'), { default_version: '2', weights: null, history: ['2', '1'] });
  });
});
