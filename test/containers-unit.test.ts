// Seed 001's containers (src/scheduler/containers.ts) without a gateway: a real SQLite state
// store in a temp dir, real package folders in a temp models dir (a registry that discovers them
// but loads nothing), and in-memory workers (test/fake-worker.ts) behind each container, so
// containers start, fail, drain and come back in milliseconds. seed-001.test.ts and
// replica-logs.test.ts check the same through a real gateway and real workers; this file runs in
// a few seconds, for `npm run mutate -- scheduler-containers`.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, mock } from 'node:test';
import pino from 'pino';
import { IsoError } from '../src/errors.js';
import type { WorkerFactory } from '../src/drivers/factory.js';
import {
  CONTAINER_NAME,
  ContainerManager,
  MAX_CONTAINER_CPUS,
  MAX_CONTAINER_MEMORY_MB,
  MAX_CONTAINER_REPLICAS,
  MAX_CONTAINERS,
  type ContainerSpec,
} from '../src/scheduler/containers.js';
import type { ModelDeployment } from '../src/scheduler/deployment.js';
import type { DeploymentObserver } from '../src/scheduler/observer.js';
import { ModelRegistry } from '../src/scheduler/registry.js';
import { StateStore } from '../src/store/db.js';
import { tempDir, removeTempDirs, writeEchoPackage, loggerInto, flush } from './scheduler-fixture.js';
import { Fleet } from './fake-worker.js';
import { failFastIt } from './fail-fast.js';

const it = failFastIt(8000);
const stores: StateStore[] = [];
const managers: ContainerManager[] = [];
after(async () => {
  for (const m of managers) await m.close();
  for (const s of stores) s.close();
  removeTempDirs();
});
afterEach(() => mock.timers.reset());

/** The package folder `<models>/<name>`: batches of one request, and limits the containers override. */
function writePackage(models: string, name: string, version: string, extra: string[] = []): void {
  writeEchoPackage(models, name, name, version, [
    'batching: { max_batch_size: 1 }',
    'resources: { cpus: 2, memory_mb: 700, timeout_ms: 4321 }',
    ...extra,
  ]);
}

class Observer implements DeploymentObserver {
  readonly restarts: string[] = [];
  queued(): void {}
  batch(): void {}
  tokens(): void {}
  restart(reason: string): void {
    this.restarts.push(reason);
  }
}

interface Env {
  models: string;
  state: StateStore;
  stateDir: string;
  registry: ModelRegistry;
}

/** A state store and a registry over two models: alpha 1.0.0 (process) and beta 2.1.0 (sandbox). */
async function env(): Promise<Env> {
  const models = tempDir('isomodel-containers-models-');
  writePackage(models, 'alpha', '1.0.0');
  writePackage(models, 'beta', '2.1.0', ['isolation: sandbox']);
  const stateDir = tempDir('isomodel-containers-state-');
  const state = new StateStore(stateDir);
  stores.push(state);
  const registry = await registryOver(models, state);
  return { models, state, stateDir, registry };
}

async function registryOver(models: string, state: StateStore): Promise<ModelRegistry> {
  // The registry's own deployments never start: its workers would fail the test.
  const registry = new ModelRegistry(
    models,
    () => {
      throw new Error('the registry started a worker');
    },
    pino({ level: 'silent' }),
    state,
  );
  await registry.init({ load: false });
  return registry;
}

/** A container manager over `e`, its workers from a fleet of its own. */
function manager(e: Env, createWorker?: WorkerFactory) {
  const fleet = new Fleet();
  fleet.auto = true;
  const lines: Record<string, unknown>[] = [];
  const logger = loggerInto(lines);
  const observed: [string, string][] = [];
  const observer = new Observer();
  const m = new ContainerManager({
    store: e.state,
    registry: e.registry,
    createWorker: createWorker ?? fleet.create,
    logger,
    observerFor: (model, version) => {
      observed.push([model, version]);
      return observer;
    },
  });
  managers.push(m);
  return { m, fleet, lines, observed, observer };
}

const spec = (name: string, over: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name,
  model: 'alpha',
  cpus: 1.5,
  memoryMb: 300,
  replicas: 1,
  ...over,
});

const code = (c: string, message?: RegExp | string) => (e: unknown) => {
  assert.ok(e instanceof IsoError, String(e));
  assert.equal(e.code, c, e.message);
  if (typeof message === 'string') assert.equal(e.message, message);
  else if (message) assert.match(e.message, message);
  return true;
};
const rows = (state: StateStore): Record<string, unknown>[] =>
  state.db.prepare('SELECT * FROM containers ORDER BY name').all() as Record<string, unknown>[];
const row = (state: StateStore, name: string): Record<string, unknown> | undefined =>
  state.db.prepare('SELECT * FROM containers WHERE name = ?').get(name) as Record<string, unknown> | undefined;
const statusOf = (m: ContainerManager, name: string): unknown => m.describe(name).status;
const echo = async (d: ModelDeployment, seq = 'AC'): Promise<string> => {
  const [out] = await d.submit({ task: 'echo', items: [{ sequence: seq, options: {} }] });
  assert.equal((out as { echo: string }).echo, seq);
  return (out as { by: string }).by;
};
/** Records how a promise settles, without awaiting it. */
function track<T>(p: Promise<T>): { value?: T; error?: unknown; settled: boolean } {
  const t: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (v) => Object.assign(t, { value: v, settled: true }),
    (e: unknown) => Object.assign(t, { error: e, settled: true }),
  );
  return t;
}
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Container c1 started on workers that answer only when told, with one request in flight. */
async function runningWithHeldRequest(e: Env) {
  const made = manager(e);
  made.fleet.auto = false;
  made.m.create(spec('c1'));
  const d = await made.m.start('c1');
  const held = track(d.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] }));
  await flush();
  return { ...made, held };
}

describe('containers: create, list, describe', () => {
  it('create: listed, described and persisted as created; no worker starts; the model keeps its own package', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    const live = m.create(spec('c1', { replicas: 2 }));
    assert.equal(live.status, 'created');
    assert.deepEqual(live.spec, { name: 'c1', model: 'alpha', cpus: 1.5, memoryMb: 300, replicas: 2 });
    m.create(spec('b-1', { model: 'beta', cpus: 0.25, memoryMb: 64 }));
    assert.deepEqual(m.names(), ['c1', 'b-1']);
    assert.deepEqual(m.ofModel('alpha'), ['c1']);
    assert.deepEqual(m.ofModel('beta'), ['b-1']);
    assert.deepEqual(m.ofModel('gamma'), []);
    assert.equal(fleet.workers.length, 0);
    const d = m.describe('c1');
    assert.match(String(d.created_at), ISO_TIME);
    assert.deepEqual(d, {
      container_name: 'c1',
      model_id: 'alpha',
      version: '1.0.0',
      isolation: 'process',
      status: 'created',
      resources: { cpu: 1.5, memory: '300M', memory_mb: 300, replicas: 2 },
      resource_use: { cpu_percent: null, memory_bytes: null, memory_percent_of_limit: null },
      replicas: [],
      queue_depth: 0,
      requests: null,
      uptime_s: null,
      last_error: null,
      created_at: live.createdAt,
    });
    assert.equal(m.describe('b-1').isolation, 'sandbox');
    assert.equal(m.describe('b-1').version, '2.1.0');
    assert.deepEqual(m.replicaHistory('c1'), []);
    assert.deepEqual(rows(e.state), [
      {
        name: 'b-1',
        model: 'beta',
        cpus: 0.25,
        memory_mb: 64,
        replicas: 1,
        running: 0,
        started: 0,
        created_at: m.describe('b-1').created_at,
      },
      {
        name: 'c1',
        model: 'alpha',
        cpus: 1.5,
        memory_mb: 300,
        replicas: 2,
        running: 0,
        started: 0,
        created_at: live.createdAt,
      },
    ]);
    // The container's limits are its own: the registry's package keeps the manifest's.
    assert.deepEqual(
      {
        cpus: e.registry.package('alpha').manifest.resources.cpus,
        mb: e.registry.package('alpha').manifest.resources.memory_mb,
      },
      { cpus: 2, mb: 700 },
    );
  });

  it('names: CONTAINER_NAME (1-64 letters, digits, ".", "_", "-"; first a letter or digit); a bad one writes nothing', async () => {
    const e = await env();
    const { m } = manager(e);
    const good = ['a', 'Z', '7', 'A.b_c-9', 'x'.repeat(64), '0.-_'];
    const bad = ['', '.x', '-x', '_x', 'a/b', '../x', 'a b', 'x'.repeat(65), 'é', 'a\n', 'a:b', 'a@1'];
    for (const n of good) assert.ok(CONTAINER_NAME.test(n), n);
    for (const n of bad) assert.ok(!CONTAINER_NAME.test(n), JSON.stringify(n));
    for (const n of bad)
      assert.throws(
        () => m.create(spec(n)),
        code(
          'INVALID_REQUEST',
          'container_name: 1-64 letters, digits, ".", "_" and "-", starting with a letter or digit',
        ),
      );
    for (const n of good) m.create(spec(n));
    assert.deepEqual(m.names(), good);
    assert.deepEqual(
      rows(e.state).map((r) => r.name),
      [...good].sort(),
    );
  });

  it('duplicate name: CONFLICT, the first kept; unknown model: MODEL_NOT_FOUND; checked in that order, nothing written', async () => {
    const e = await env();
    const { m } = manager(e);
    m.create(spec('c1'));
    assert.throws(
      () => m.create(spec('c1', { model: 'beta', cpus: 3 })),
      code('CONFLICT', 'container c1 already exists'),
    );
    assert.throws(() => m.create(spec('c1', { model: 'ghost' })), code('CONFLICT'));
    assert.throws(() => m.create(spec('c2', { model: 'ghost' })), code('MODEL_NOT_FOUND', /ghost/));
    assert.throws(() => m.create(spec('../c2', { model: 'ghost' })), code('INVALID_REQUEST'));
    assert.deepEqual(m.names(), ['c1']);
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.model, r.cpus]),
      [['c1', 'alpha', 1.5]],
    );
    assert.equal(m.describe('c1').model_id, 'alpha');
  });

  it('at most MAX_CONTAINERS (256): the next is QUOTA_EXCEEDED until one is deleted', async () => {
    const e = await env();
    const { m } = manager(e);
    assert.equal(MAX_CONTAINERS, 256);
    for (let i = 0; i < MAX_CONTAINERS; i++) m.create(spec(`c${i}`));
    assert.equal(m.names().length, 256);
    assert.throws(() => m.create(spec('one-more')), code('QUOTA_EXCEEDED', 'at most 256 containers'));
    // A duplicate is still told as such, and a bad name as a bad name.
    assert.throws(() => m.create(spec('c0')), code('CONFLICT'));
    assert.throws(() => m.create(spec('-x')), code('INVALID_REQUEST'));
    assert.equal((e.state.db.prepare('SELECT COUNT(*) AS n FROM containers').get() as { n: number }).n, 256);
    await m.delete('c7');
    m.create(spec('one-more'));
    assert.equal(m.names().length, 256);
    assert.equal(m.names().at(-1), 'one-more');
  });

  it('limits: cpus in (0, 1024], memory 1..16 TiB of whole MB, replicas 1..16; VALIDATION_ERROR otherwise', async () => {
    const e = await env();
    const { m } = manager(e);
    assert.deepEqual(
      [MAX_CONTAINER_CPUS, MAX_CONTAINER_MEMORY_MB, MAX_CONTAINER_REPLICAS],
      [1024, 16 * 1024 * 1024, 16],
    );
    const bad: [Partial<ContainerSpec>, RegExp][] = [
      [{ cpus: 0 }, /^cpus: more than 0 and at most 1024$/],
      [{ cpus: -1 }, /cpus/],
      [{ cpus: 1024.5 }, /cpus/],
      [{ cpus: Number.NaN }, /cpus/],
      [{ cpus: Number.POSITIVE_INFINITY }, /cpus/],
      [{ memoryMb: 0 }, /^memory_mb: a whole number of MB from 1 to 16777216$/],
      [{ memoryMb: 1.5 }, /memory_mb/],
      [{ memoryMb: 16 * 1024 * 1024 + 1 }, /memory_mb/],
      [{ memoryMb: Number.NaN }, /memory_mb/],
      [{ replicas: 0 }, /^replicas: a whole number from 1 to 16$/],
      [{ replicas: 17 }, /replicas/],
      [{ replicas: 1.5 }, /replicas/],
      [{ replicas: -1 }, /replicas/],
    ];
    for (const [over, message] of bad)
      assert.throws(() => m.create(spec('c', over)), code('VALIDATION_ERROR', message), JSON.stringify(over));
    assert.deepEqual(m.names(), []);
    assert.deepEqual(rows(e.state), []);
    m.create(spec('edge-max', { cpus: 1024, memoryMb: 16 * 1024 * 1024, replicas: 16 }));
    m.create(spec('edge-min', { cpus: 0.001, memoryMb: 1, replicas: 1 }));
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.cpus, r.memory_mb, r.replicas]),
      [
        ['edge-max', 1024, 16 * 1024 * 1024, 16],
        ['edge-min', 0.001, 1, 1],
      ],
    );
  });

  it('unknown names: NOT_FOUND from every operation, the name quoted and cut to 80 characters', async () => {
    const e = await env();
    const { m } = manager(e);
    const long = 'y'.repeat(200);
    const msg = `no container "${'y'.repeat(80)}"`;
    assert.throws(() => m.describe(long), code('NOT_FOUND', msg));
    assert.throws(() => m.describe('ghost'), code('NOT_FOUND', 'no container "ghost"'));
    assert.throws(() => m.serving('ghost'), code('NOT_FOUND'));
    assert.throws(() => m.replicaHistory('ghost'), code('NOT_FOUND'));
    await assert.rejects(m.start('ghost'), code('NOT_FOUND', 'no container "ghost"'));
    await assert.rejects(m.stop('ghost'), code('NOT_FOUND'));
    await assert.rejects(m.delete(long), code('NOT_FOUND', msg));
  });
});

describe('containers: start, serve, stop, delete', () => {
  it('start: starting, then running with `replicas` workers that carry the limits; persisted as running', async () => {
    const e = await env();
    const { m, fleet, observed } = manager(e);
    m.create(spec('c1', { cpus: 0.5, memoryMb: 300, replicas: 2 }));
    const p = m.start('c1');
    assert.equal(statusOf(m, 'c1'), 'starting');
    assert.equal(row(e.state, 'c1')!.running, 0);
    const d = await p;
    assert.equal(statusOf(m, 'c1'), 'running');
    assert.equal(row(e.state, 'c1')!.running, 1);
    assert.deepEqual(observed, [['alpha', '1.0.0']]);
    assert.equal(d.state, 'ready');
    assert.deepEqual([d.scaling.min_replicas, d.scaling.max_replicas, d.scaling.idle_timeout_s], [2, 2, 0]);
    assert.equal(fleet.workers.length, 2);
    for (const w of fleet.workers) {
      assert.equal(w.state, 'idle');
      assert.equal(w.pkg.manifest.name, 'alpha');
      assert.equal(w.pkg.manifest.version, '1.0.0');
      assert.equal(w.pkg.manifest.resources.cpus, 0.5);
      assert.equal(w.pkg.manifest.resources.memory_mb, 300);
      assert.equal(w.pkg.manifest.resources.timeout_ms, 4321, "the manifest's other resources stay");
      assert.equal(w.pkg.dir, join(e.models, 'alpha'));
    }
    assert.equal(e.registry.package('alpha').manifest.resources.cpus, 2);
    assert.equal(e.registry.package('alpha').manifest.resources.memory_mb, 700);
    assert.equal(e.registry.deployment('alpha'), undefined, "the model's own deployment is not started");
    assert.equal(m.serving('c1'), d);
    // Starting a running container: the same deployment, no new worker.
    assert.equal(await m.start('c1'), d);
    assert.equal(fleet.workers.length, 2);
    assert.deepEqual(
      m.describe('c1').replicas,
      fleet.workers.map((w) => ({
        id: w.id,
        state: 'ready',
        pid: w.pid,
        busy: false,
        restarts: 0,
        rss_bytes: 1000 + w.pid,
        cpu_percent: 12.3,
        open_fds: 7,
        last_exit: undefined,
        last_error: undefined,
        devices: undefined,
      })),
    );
    assert.deepEqual(
      m.replicaHistory('c1'),
      fleet.workers.map((w) => w.id),
    );
  });

  it('describe of a running container: resource use summed over replicas, percent of limit × replicas, queue, requests, uptime', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    const e = await env();
    const { m, fleet } = manager(e);
    fleet.auto = false;
    m.create(spec('c1', { memoryMb: 300, replicas: 2 }));
    const d = await m.start('c1');
    const MiB = 1024 * 1024;
    fleet.workers[0]!.statsOf = { pid: 1, rssBytes: 60 * MiB, cpuPercent: 10.04, openFds: 3 };
    fleet.workers[1]!.statsOf = { pid: 2, rssBytes: 41 * MiB, cpuPercent: 20.5, openFds: 4 };
    mock.timers.tick(4600);
    // Four requests, batches of one: one on each replica, two queued.
    const calls = [0, 1, 2, 3].map(() => d.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] }));
    await flush();
    const x = m.describe('c1');
    assert.deepEqual(x.resource_use, {
      cpu_percent: 10 + 20.5,
      memory_bytes: 101 * MiB,
      // 101 MiB of 2 × 300 MiB: 16.83 %, to one decimal.
      memory_percent_of_limit: 16.8,
    });
    assert.equal(x.queue_depth, 2);
    assert.equal(x.uptime_s, 5);
    assert.deepEqual(
      (x.replicas as { busy: boolean }[]).map((r) => r.busy),
      [true, true],
    );
    for (let i = 0; i < 4; i++) {
      (fleet.workers.find((w) => w.open.length > 0) ?? assert.fail('no call')).answer();
      await flush();
    }
    await Promise.all(calls);
    const after = m.describe('c1');
    assert.equal(after.queue_depth, 0);
    assert.deepEqual(after.requests, d.stats.summary());
    assert.equal((after.requests as { batches: number }).batches, 4);
    // Replicas without figures: no sums (null), not 0.
    for (const w of fleet.workers) w.statsOf = { pid: w.pid } as never;
    assert.deepEqual(m.describe('c1').resource_use, {
      cpu_percent: null,
      memory_bytes: null,
      memory_percent_of_limit: null,
    });
  });

  it("requests go to the container's own replicas, spread over them", async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    fleet.auto = false;
    m.create(spec('c1', { replicas: 2 }));
    m.create(spec('c2', { model: 'beta' }));
    await m.start('c1');
    await m.start('c2');
    const [w1, w2, w3] = fleet.workers;
    assert.equal(w3!.pkg.manifest.name, 'beta');
    const d = m.serving('c1');
    const a = d.submit({ task: 'echo', items: [{ sequence: 'AAA', options: {} }] });
    const b = d.submit({ task: 'echo', items: [{ sequence: 'CCC', options: {} }] });
    await flush();
    assert.deepEqual([w1!.open.length, w2!.open.length, w3!.open.length], [1, 1, 0]);
    w1!.answer();
    w2!.answer();
    const got = [(await a)[0], (await b)[0]] as { echo: string; by: string }[];
    assert.deepEqual(
      got.map((o) => o.echo),
      ['AAA', 'CCC'],
    );
    assert.deepEqual(got.map((o) => o.by).sort(), [w1!.id, w2!.id].sort());
    const c = m.serving('c2').submit({ task: 'echo', items: [{ sequence: 'GG', options: {} }] });
    await flush();
    assert.equal(w3!.open.length, 1);
    w3!.answer();
    assert.deepEqual(await c, [{ echo: 'GG', by: w3!.id }]);
  });

  it('serving: MODEL_NOT_LOADED (with the status) unless running', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1'));
    assert.throws(
      () => m.serving('c1'),
      code('MODEL_NOT_LOADED', 'container c1 is created: start it first (POST /api/containers/start)'),
    );
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const p = m.start('c1');
    await flush();
    assert.throws(() => m.serving('c1'), code('MODEL_NOT_LOADED', /^container c1 is starting: /));
    open();
    await p;
    assert.equal(await echo(m.serving('c1')), fleet.workers[0]!.id);
    await m.stop('c1');
    assert.throws(() => m.serving('c1'), code('MODEL_NOT_LOADED', /^container c1 is stopped: /));
  });

  it('a second start while one is in progress waits for it: one set of workers', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1', { replicas: 2 }));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    fleet.plans.push(gate, gate);
    const first = track(m.start('c1'));
    const second = track(m.start('c1'));
    await flush();
    assert.equal(first.settled || second.settled, false);
    assert.equal(fleet.workers.length, 2);
    open();
    await flush();
    assert.ok(first.value && first.value === second.value);
    assert.equal(fleet.workers.length, 2);
    assert.equal(statusOf(m, 'c1'), 'running');
  });

  it('a failing start: failed with its error, nothing left running, not persisted as running; a later start succeeds', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1', { replicas: 2 }));
    fleet.plans.push('ok', 'fail');
    await assert.rejects(m.start('c1'), code('MODEL_NOT_LOADED', 'boom'));
    assert.equal(statusOf(m, 'c1'), 'failed');
    assert.equal(m.describe('c1').last_error, 'boom');
    assert.equal(m.describe('c1').uptime_s, null);
    assert.deepEqual(m.describe('c1').replicas, []);
    assert.equal(row(e.state, 'c1')!.running, 0);
    assert.deepEqual(fleet.live(), []);
    assert.throws(() => m.serving('c1'), code('MODEL_NOT_LOADED', /^container c1 is failed: /));
    // A worker that stays up but never says ready (a driver's start timeout).
    fleet.plans.push('reject');
    await assert.rejects(m.start('c1'), code('MODEL_NOT_LOADED', 'no ready line within 60 s'));
    assert.equal(m.describe('c1').last_error, 'no ready line within 60 s');
    assert.deepEqual(fleet.live(), []);
    // Then it starts: running, the error cleared.
    const d = await m.start('c1');
    assert.equal(statusOf(m, 'c1'), 'running');
    assert.equal(m.describe('c1').last_error, null);
    assert.equal(row(e.state, 'c1')!.running, 1);
    assert.equal(fleet.live().length, 2);
    assert.equal(m.serving('c1'), d);
  });

  it('a worker factory that throws: an IsoError kept as it is, any other error as MODEL_NOT_LOADED', async () => {
    const e = await env();
    const fails: Error[] = [new IsoError('INTERNAL_ERROR', 'no docker engine'), new Error('spawn bwrap ENOENT')];
    const { m } = manager(e, () => {
      throw fails.shift()!;
    });
    m.create(spec('c1'));
    await assert.rejects(m.start('c1'), code('INTERNAL_ERROR', 'no docker engine'));
    assert.equal(m.describe('c1').last_error, 'no docker engine');
    await assert.rejects(m.start('c1'), code('MODEL_NOT_LOADED', 'spawn bwrap ENOENT'));
    assert.equal(statusOf(m, 'c1'), 'failed');
    assert.equal(m.describe('c1').last_error, 'spawn bwrap ENOENT');
  });

  it('stop: stopping while in-flight requests finish, then stopped; workers gone, persisted as not running', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    fleet.auto = false;
    m.create(spec('c1', { replicas: 2 }));
    const d = await m.start('c1');
    const held = d.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] });
    await flush();
    const stopping = track(m.stop('c1'));
    await flush();
    assert.equal(stopping.settled, false);
    assert.equal(statusOf(m, 'c1'), 'stopping');
    assert.throws(() => m.serving('c1'), code('MODEL_NOT_LOADED', /^container c1 is stopping: /));
    assert.equal(row(e.state, 'c1')!.running, 1);
    fleet.workers.find((w) => w.open.length)!.answer();
    assert.deepEqual(await held, [{ echo: 'AC', by: fleet.workers.find((w) => w.calls.length)!.id }]);
    await flush();
    assert.equal(stopping.settled, true);
    assert.equal(stopping.error, undefined);
    assert.equal(statusOf(m, 'c1'), 'stopped');
    assert.equal(row(e.state, 'c1')!.running, 0);
    assert.deepEqual(fleet.live(), []);
    assert.deepEqual(
      fleet.workers.map((w) => w.stops),
      [1, 1],
    );
    const x = m.describe('c1');
    assert.deepEqual([x.replicas, x.uptime_s, x.queue_depth, x.requests], [[], null, 0, null]);
    // Stopping a stopped container again is harmless.
    await m.stop('c1');
    assert.equal(statusOf(m, 'c1'), 'stopped');
  });

  it('stop with a grace: a request still running when it ends fails; a created container just becomes stopped', async () => {
    const e = await env();
    const { m, fleet, held } = await runningWithHeldRequest(e);
    m.create(spec('idle'));
    await m.stop('c1', 30);
    await flush();
    assert.ok(held.error instanceof IsoError, String(held.error));
    assert.equal(statusOf(m, 'c1'), 'stopped');
    assert.deepEqual(fleet.live(), []);
    await m.stop('idle');
    assert.equal(statusOf(m, 'idle'), 'stopped');
    assert.equal(row(e.state, 'idle')!.running, 0);
  });

  it('two stops at once: the second answers when the first has drained the workers, not before', async () => {
    const e = await env();
    const { m, fleet, held } = await runningWithHeldRequest(e);
    const first = track(m.stop('c1', 10_000));
    const second = track(m.stop('c1', 10_000));
    await flush();
    assert.equal(second.settled, false, 'the second stop waits for the drain');
    assert.equal(statusOf(m, 'c1'), 'stopping');
    assert.equal(row(e.state, 'c1')!.running, 1);
    fleet.live()[0]!.answer();
    await flush(20);
    assert.equal(held.settled, true);
    assert.equal(held.error, undefined, 'the request in flight was answered');
    assert.deepEqual([first.settled, second.settled], [true, true]);
    assert.equal(statusOf(m, 'c1'), 'stopped');
    assert.equal(row(e.state, 'c1')!.running, 0);
    assert.deepEqual(fleet.live(), []);
  });

  it('a start while a stop drains, then another stop: it waits for the drain, then stops the new workers', async () => {
    const e = await env();
    const { m, fleet } = await runningWithHeldRequest(e);
    const old = fleet.live()[0]!;
    const first = track(m.stop('c1', 10_000));
    await flush();
    const started = track(m.start('c1'));
    await flush(20);
    assert.ok(started.value, 'the start did not wait for the drain');
    const second = track(m.stop('c1', 10_000));
    await flush();
    assert.equal(second.settled, false);
    old.answer();
    await flush(20);
    assert.deepEqual([first.settled, second.settled], [true, true]);
    assert.equal(statusOf(m, 'c1'), 'stopped');
    assert.deepEqual(fleet.live(), []);
  });

  it('stop while starting: waits for the start, then stops it', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1'));
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const start = track(m.start('c1'));
    const stop = track(m.stop('c1'));
    await flush();
    assert.equal(stop.settled, false);
    assert.equal(statusOf(m, 'c1'), 'starting');
    open();
    await flush(20);
    assert.equal(stop.settled, true);
    assert.ok(start.value);
    assert.equal(statusOf(m, 'c1'), 'stopped');
    assert.equal(row(e.state, 'c1')!.running, 0);
    assert.deepEqual(fleet.live(), []);
  });

  it('restart: new replicas after a stop; the replica history keeps both, newest last, at most 64 ids', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1', { replicas: 2 }));
    await m.start('c1');
    await m.stop('c1');
    const d = await m.start('c1');
    assert.equal(statusOf(m, 'c1'), 'running');
    assert.equal(row(e.state, 'c1')!.running, 1);
    assert.equal(fleet.workers.length, 4);
    assert.deepEqual(fleet.live(), fleet.workers.slice(2));
    assert.equal(await echo(d).then((by) => fleet.workers.slice(2).some((w) => w.id === by)), true);
    assert.deepEqual(
      m.replicaHistory('c1'),
      fleet.workers.map((w) => w.id),
    );
    // A replica restarted in place (a new worker under its id) adds no entry.
    const ids = fleet.workers.map((w) => w.id);
    fleet.workers.at(-1)!.crash();
    mock.timers.tick(1000);
    await flush();
    assert.equal(fleet.workers.length, 5);
    assert.equal(fleet.workers[4]!.id, fleet.workers[3]!.id);
    assert.deepEqual(m.replicaHistory('c1'), ids);
    // One replica, 65 starts: the 64 newest ids are kept.
    m.create(spec('one'));
    const first = fleet.workers.length;
    for (let i = 0; i < 65; i++) {
      await m.start('one');
      await m.stop('one');
    }
    assert.equal(fleet.workers.length, first + 65);
    assert.deepEqual(
      m.replicaHistory('one'),
      fleet.workers.slice(first + 1).map((w) => w.id),
    );
    assert.equal(m.replicaHistory('one').length, 64);
  });

  it('delete: stops the workers, forgets the container and its row; the name is free again', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1', { replicas: 2 }));
    m.create(spec('keep'));
    await m.start('c1');
    await m.delete('c1');
    assert.deepEqual(m.names(), ['keep']);
    assert.deepEqual(m.ofModel('alpha'), ['keep']);
    assert.deepEqual(
      rows(e.state).map((r) => r.name),
      ['keep'],
    );
    assert.deepEqual(fleet.live(), []);
    assert.throws(() => m.describe('c1'), code('NOT_FOUND'));
    await assert.rejects(m.delete('c1'), code('NOT_FOUND'));
    m.create(spec('c1', { model: 'beta', replicas: 1 }));
    assert.equal(m.describe('c1').status, 'created');
    assert.equal(m.describe('c1').model_id, 'beta');
    // A created (never started) container is deleted as well.
    await m.delete('keep');
    assert.deepEqual(m.names(), ['c1']);
  });

  it('the deployment logs under the container and reports to the observer of its model', async () => {
    const e = await env();
    const { m, fleet, lines, observer } = manager(e);
    m.create(spec('c1'));
    await m.start('c1');
    fleet.workers[0]!.crash('crashed (exit code 3)');
    await flush();
    const line = lines.find((l) => l.msg === 'replica exited; restarting');
    assert.ok(line, JSON.stringify(lines));
    assert.equal(line.container, 'c1');
    assert.equal(line.model, 'alpha');
    assert.deepEqual(observer.restarts, ['crashed (exit code 3)']);
  });
});

describe('containers: races and failures after the start (regressions)', () => {
  it('a start while a stop drains: the start wins (running, persisted as running); the stop does not mark it stopped', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    fleet.auto = false;
    m.create(spec('c1'));
    const d1 = await m.start('c1');
    const held = d1.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] });
    await flush();
    const stopping = track(m.stop('c1'));
    await flush();
    assert.equal(statusOf(m, 'c1'), 'stopping');
    const d2 = await m.start('c1');
    assert.notEqual(d2, d1);
    assert.equal(statusOf(m, 'c1'), 'running');
    fleet.workers[0]!.answer();
    await held;
    await flush();
    assert.equal(stopping.settled, true);
    assert.equal(statusOf(m, 'c1'), 'running');
    assert.equal(row(e.state, 'c1')!.running, 1);
    assert.equal(m.serving('c1'), d2);
    assert.deepEqual(fleet.live(), [fleet.workers[1]]);
  });

  it('delete: the container is gone at once; a start while it drains is NOT_FOUND; a new one of that name keeps its row', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    fleet.auto = false;
    m.create(spec('c1'));
    const d1 = await m.start('c1');
    const held = d1.submit({ task: 'echo', items: [{ sequence: 'AC', options: {} }] });
    await flush();
    const deleting = track(m.delete('c1'));
    await flush();
    assert.deepEqual(m.names(), []);
    assert.deepEqual(rows(e.state), []);
    await assert.rejects(m.start('c1'), code('NOT_FOUND'));
    m.create(spec('c1', { model: 'beta' }));
    await m.start('c1');
    fleet.workers[0]!.answer();
    await held;
    await flush();
    assert.equal(deleting.settled, true);
    assert.equal(deleting.error, undefined);
    assert.deepEqual(fleet.live(), [fleet.workers[1]]);
    assert.equal(statusOf(m, 'c1'), 'running');
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.model, r.running]),
      [['c1', 'beta', 1]],
    );
  });

  it('delete while starting: the start ends stopped; a new container of that name keeps its row as it is', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1'));
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const start = track(m.start('c1'));
    await flush();
    const deleting = track(m.delete('c1'));
    await flush();
    m.create(spec('c1', { model: 'beta' }));
    open();
    await flush(20);
    assert.ok(start.value);
    assert.equal(deleting.settled, true);
    assert.deepEqual(fleet.live(), []);
    assert.equal(statusOf(m, 'c1'), 'created');
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.model, r.running]),
      [['c1', 'beta', 0]],
    );
  });

  it('replicas that keep failing after the start: the container is failed with the error; a start replaces the failed deployment', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('c1'));
    const d1 = await m.start('c1');
    fleet.plans.push('fail', 'fail', 'fail', 'fail', 'fail');
    fleet.workers[0]!.crash();
    for (let i = 0; i < 6; i++) {
      mock.timers.tick(10_000);
      await flush();
    }
    assert.equal(d1.state, 'failed');
    assert.equal(statusOf(m, 'c1'), 'failed');
    assert.equal(m.describe('c1').last_error, 'boom');
    assert.throws(() => m.serving('c1'), code('MODEL_NOT_LOADED', /^container c1 is failed: /));
    // Still meant to run: the next gateway start tries again.
    assert.equal(row(e.state, 'c1')!.running, 1);
    const d2 = await m.start('c1');
    assert.notEqual(d2, d1);
    assert.equal(d1.state, 'stopped', 'the failed deployment is stopped, not left ticking');
    assert.equal(statusOf(m, 'c1'), 'running');
    assert.equal(m.describe('c1').last_error, null);
    assert.equal(await echo(d2), fleet.workers.at(-1)!.id);
  });
});

describe('containers: persistence across gateway starts', () => {
  it('a state store written before the started column: a running container counts as started, a stopped one as created', async () => {
    const e = await env();
    // The table as the first version made it (migration 1 of namespace containers).
    e.state.migrateNamespace('containers', [
      `CREATE TABLE containers (
         name TEXT PRIMARY KEY, model TEXT NOT NULL, cpus REAL NOT NULL, memory_mb INTEGER NOT NULL,
         replicas INTEGER NOT NULL, running INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
       )`,
    ]);
    const insert = e.state.db.prepare(
      "INSERT INTO containers (name, model, cpus, memory_mb, replicas, running, created_at) VALUES (?, 'alpha', 1, 64, 1, ?, ?)",
    );
    insert.run('was-running', 1, '2026-01-01T00:00:00.000Z');
    insert.run('not-running', 0, '2026-01-02T00:00:00.000Z');
    const { m } = manager(e);
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.running, r.started]),
      [
        ['not-running', 0, 0],
        ['was-running', 1, 1],
      ],
    );
    assert.deepEqual(
      m.names().map((n) => [n, statusOf(m, n)]),
      [
        ['was-running', 'stopped'],
        ['not-running', 'created'],
      ],
    );
    // Started and stopped now: stopped from here on, through the next start of the gateway.
    await m.start('not-running');
    await m.stop('not-running');
    assert.equal(row(e.state, 'not-running')!.started, 1);
    assert.equal(statusOf(manager(e).m, 'not-running'), 'stopped');
  });

  it('a new manager over the same state store: every container back; restore() starts the ones that were running', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
    const e = await env();
    const one = manager(e);
    // Made in an order unlike their names', a second apart: they come back in creation order.
    one.m.create(spec('zeta', { cpus: 0.75, memoryMb: 128, replicas: 2 }));
    mock.timers.tick(1000);
    one.m.create(spec('alpha-never-started', { model: 'beta' }));
    mock.timers.tick(1000);
    one.m.create(spec('mid-stopped'));
    mock.timers.tick(1000);
    one.m.create(spec('fails-next-time'));
    await one.m.start('zeta');
    await one.m.start('mid-stopped');
    await one.m.stop('mid-stopped');
    await one.m.start('fails-next-time');
    const before = one.m.names().map((n) => one.m.describe(n).created_at);
    await one.m.close();
    // Closing keeps every record, running or not, and whether it was ever started.
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.running, r.started]),
      [
        ['alpha-never-started', 0, 0],
        ['fails-next-time', 1, 1],
        ['mid-stopped', 0, 1],
        ['zeta', 1, 1],
      ],
    );
    assert.deepEqual(one.fleet.live(), []);

    const two = manager(e);
    assert.deepEqual(two.m.names(), ['zeta', 'alpha-never-started', 'mid-stopped', 'fails-next-time']);
    assert.deepEqual(
      two.m.names().map((n) => two.m.describe(n).created_at),
      before,
    );
    // Before restore(): the ones ever started are stopped (one stopped by hand stays so), the
    // one never started is created.
    assert.deepEqual(
      two.m.names().map((n) => statusOf(two.m, n)),
      ['stopped', 'created', 'stopped', 'stopped'],
    );
    assert.deepEqual(two.m.describe('zeta').resources, { cpu: 0.75, memory: '128M', memory_mb: 128, replicas: 2 });
    assert.equal(two.m.describe('alpha-never-started').model_id, 'beta');
    assert.equal(two.fleet.workers.length, 0);
    two.fleet.plans.push('ok', 'ok', 'fail');
    two.m.restore();
    await flush(20);
    assert.deepEqual(
      two.m.names().map((n) => statusOf(two.m, n)),
      ['running', 'created', 'stopped', 'failed'],
    );
    assert.equal(two.fleet.live().length, 2);
    for (const w of two.fleet.live()) {
      assert.equal(w.pkg.manifest.resources.cpus, 0.75);
      assert.equal(w.pkg.manifest.resources.memory_mb, 128);
    }
    assert.equal(await echo(two.m.serving('zeta')).then((by) => two.fleet.live().some((w) => w.id === by)), true);
    assert.equal(two.m.describe('fails-next-time').last_error, 'boom');
    const warn = two.lines.find((l) => l.msg === 'container did not start again');
    assert.deepEqual([warn?.level, warn?.container, warn?.error], [40, 'fails-next-time', 'boom']);
    // A container that failed to come back stays marked running: the next start tries again.
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.running]),
      [
        ['alpha-never-started', 0],
        ['fails-next-time', 1],
        ['mid-stopped', 0],
        ['zeta', 1],
      ],
    );
  });

  it('a container whose model is gone: described without version, its start MODEL_NOT_FOUND, restore logs it', async () => {
    const e = await env();
    const one = manager(e);
    one.m.create(spec('c1'));
    await one.m.start('c1');
    await one.m.close();
    rmSync(join(e.models, 'alpha'), { recursive: true });
    const registry = await registryOver(e.models, e.state);
    const two = manager({ ...e, registry });
    assert.deepEqual(two.m.ofModel('alpha'), ['c1']);
    const x = two.m.describe('c1');
    assert.deepEqual([x.model_id, x.version, x.isolation, x.status], ['alpha', null, null, 'stopped']);
    two.m.restore();
    await flush();
    const warn = two.lines.find((l) => l.msg === 'container did not start again');
    assert.equal(warn?.container, 'c1');
    assert.match(String(warn?.error), /alpha/);
    await assert.rejects(two.m.start('c1'), code('MODEL_NOT_FOUND'));
    assert.equal(two.fleet.workers.length, 0);
    // It can still be deleted.
    await two.m.delete('c1');
    assert.deepEqual(rows(e.state), []);
  });

  it('close: stops every worker (a start in progress first) and keeps the records as they were', async () => {
    const e = await env();
    const { m, fleet } = manager(e);
    m.create(spec('a', { replicas: 2 }));
    m.create(spec('b'));
    m.create(spec('c'));
    await m.start('a');
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const starting = track(m.start('b'));
    await flush();
    const closing = track(m.close());
    await flush();
    assert.equal(closing.settled, false);
    open();
    await flush(20);
    assert.equal(closing.settled, true);
    assert.ok(starting.value);
    assert.deepEqual(fleet.live(), []);
    assert.deepEqual(
      rows(e.state).map((r) => [r.name, r.running]),
      [
        ['a', 1],
        ['b', 1],
        ['c', 0],
      ],
    );
    assert.throws(() => m.serving('a'), code('MODEL_NOT_LOADED'));
  });
});
