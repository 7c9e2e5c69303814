// Deployments made through one gateway's deployment API, applied by the others
// (src/scheduler/deployment-sync.ts), without gateways or workers: two DeploymentSyncs share one
// real SQLite file through two real SharedDeploymentStores (the store's code is the same on
// PostgreSQL but for the lock and NOTIFY), and each drives a recording registry that loads real
// package folders. shared-config.test.ts checks the same between two real gateways on PostgreSQL;
// this file runs in a second or two, for `npm run mutate -- scheduler-deployment-sync`.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe } from 'node:test';
import Database from 'better-sqlite3';
import { IsoError } from '../src/errors.js';
import { httpManifest, httpPackagesDir, writeHttpPackage } from '../src/manifest/http-package.js';
import { loadPackage, type ModelPackage } from '../src/manifest/load.js';
import { DeploymentSync } from '../src/scheduler/deployment-sync.js';
import type { ModelRegistry, VersionOverrides } from '../src/scheduler/registry.js';
import { parseModelId } from '../src/scheduler/versions.js';
import { SqliteClient } from '../src/store/sql.js';
import { SharedDeploymentStore, type DeploymentSpec } from '../src/store/shared/deployments.js';
import { failFastIt } from './fail-fast.js';
import { flush, loggerInto, removeTempDirs, tempDir, writeEchoPackage, type LogLine } from './scheduler-fixture.js';

const it = failFastIt(8000);

/** The registry calls DeploymentSync makes, recorded; packages are read from real folders. */
class RecordingRegistry {
  readonly calls: string[] = [];
  readonly pkgs = new Map<string, ModelPackage>();
  /** Per id: promises its next loads wait for, one each (slow loads). */
  readonly gates = new Map<string, Promise<void>[]>();
  failLoad: string | null = null;

  constructor(readonly modelsDir: string) {}

  names(): string[] {
    return [...new Set([...this.pkgs.values()].map((p) => p.manifest.name))];
  }
  defaultVersion(name: string): string {
    const versions = [...this.pkgs.values()].filter((p) => p.manifest.name === name).map((p) => p.manifest.version);
    if (!versions.length) throw new IsoError('MODEL_NOT_FOUND', `no model ${name}`);
    return versions.sort().at(-1)!;
  }
  package(id: string): ModelPackage {
    const { name, version } = parseModelId(id);
    const p = this.pkgs.get(`${name}@${version ?? this.defaultVersion(name)}`);
    if (!p) throw new IsoError('MODEL_NOT_FOUND', `no ${id}`);
    return p;
  }
  register(dir: string): ModelPackage {
    this.calls.push(`register ${dir}`);
    const pkg = loadPackage(dir);
    this.pkgs.set(`${pkg.manifest.name}@${pkg.manifest.version}`, pkg);
    return pkg;
  }
  async load(id: string, overrides?: VersionOverrides): Promise<void> {
    this.calls.push(`load ${id} ${JSON.stringify(overrides ?? null)}`);
    await this.gates.get(id)?.shift();
    if (this.failLoad === id) throw new Error(`cannot load ${id}`);
    this.calls.push(`loaded ${id}`);
  }
  async scale(id: string, replicas: number): Promise<void> {
    this.calls.push(`scale ${id} ${replicas}`);
  }
  async rollingUpdate(name: string, version: string, overrides: VersionOverrides | undefined, opts: object) {
    this.calls.push(`update ${name} ${version} ${JSON.stringify(overrides ?? null)} ${JSON.stringify(opts)}`);
  }
  async unload(id: string, opts: object): Promise<void> {
    this.calls.push(`unload ${id} ${JSON.stringify(opts)}`);
  }
  async remove(name: string, opts: object): Promise<void> {
    this.calls.push(`remove ${name} ${JSON.stringify(opts)}`);
    for (const [k, p] of this.pkgs) if (p.manifest.name === name) this.pkgs.delete(k);
  }
}

interface Side {
  registry: RecordingRegistry;
  store: SharedDeploymentStore;
  sync: DeploymentSync;
  stateDir: string;
  logs: LogLine[];
  sql: SqliteClient;
}

const opened: Side[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) {
    s.sync.close();
    await s.sync.settled();
    await s.sql.close();
    s.sql.db.close();
  }
});
after(removeTempDirs);

/** A database file shared by the gateways of one test. */
const sharedDb = (): string => join(tempDir('isomodel-depsync-db-'), 'shared.db');

/** One gateway's side: its own models dir (with `folders` written into it) and state dir. */
/** A package folder to write into a gateway's models dir: folder, model name, version. */
type Folder = [folder: string, name: string, version: string];

async function gateway(db: string, folders: Folder[] = [], start = true) {
  const models = tempDir('isomodel-depsync-models-');
  for (const [folder, name, version] of folders) writeEchoPackage(models, folder, name, version);
  const registry = new RecordingRegistry(models);
  for (const [folder] of folders) registry.register(join(models, folder));
  registry.calls.length = 0;
  const sql = new SqliteClient(new Database(db));
  const store = await SharedDeploymentStore.open(sql);
  const stateDir = tempDir('isomodel-depsync-state-');
  const logs: LogLine[] = [];
  const sync = new DeploymentSync(registry as unknown as ModelRegistry, store, stateDir, loggerInto(logs));
  const side: Side = { registry, store, sync, stateDir, logs, sql };
  opened.push(side);
  if (start) sync.start();
  return side;
}

/** B reads the database again (what NOTIFY or the 500 ms re-read does) and finishes applying. */
async function hear(side: Side): Promise<void> {
  await side.store.reload();
  await side.sync.settled();
}

/** The row as stored now (read again: a store's copy changes only when it reads). */
async function rowOf(side: Side, name: string, version: string): Promise<DeploymentSpec | undefined> {
  await side.store.reload();
  return side.store.all().find((s) => s.name === name && s.version === version);
}

const warnings = (side: Side) =>
  side.logs.filter((l) => l.msg === 'cannot apply a deployment made through another gateway').map((l) => l.error);

describe('deployment sync: what one gateway deploys, the others do', () => {
  it('a deploy from the models dir: recorded with its source and overrides, registered and loaded on B, not again on A', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo-pkg', 'echo', '1.0.0']]);
    // B has the folder but does not know the package (added after it started, no watching).
    const b = await gateway(db, [['echo-pkg', 'echo', '1.0.0']]);
    b.registry.pkgs.clear();
    const overrides = { resources: { memory_mb: 300 } };
    await a.sync.deployed('echo', overrides);
    const row = (await rowOf(a, 'echo', '1.0.0'))!;
    assert.equal(row.action, 'deploy');
    assert.deepEqual(row.source, { kind: 'models_dir', dir: 'echo-pkg' });
    assert.deepEqual(row.overrides, overrides);
    assert.equal(row.replicas, null);

    await hear(b);
    assert.deepEqual(b.registry.calls, [
      `register ${join(b.registry.modelsDir, 'echo-pkg')}`,
      `load echo@1.0.0 ${JSON.stringify(overrides)}`,
      'loaded echo@1.0.0',
    ]);
    // The writer marked its own change applied: reading it back does nothing there.
    await hear(a);
    assert.deepEqual(a.registry.calls, []);
    assert.equal(b.logs.filter((l) => l.msg === 'applying a deployment made through another gateway').length, 1);
    // Another model's change makes B read every row again: echo's, applied already, is not redone.
    await a.store.put(
      'nothing',
      '',
      () => ({ action: 'remove', source: null, overrides: null, replicas: null }),
      () => {},
    );
    await hear(b);
    assert.equal(b.registry.calls.filter((c) => c.startsWith('load ')).length, 1);
    assert.equal(b.logs.filter((l) => l.msg === 'applying a deployment made through another gateway').length, 2);
  });

  it('a version B already knows is loaded without registering it again', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    const b = await gateway(db, [['echo', 'echo', '1.0.0']]);
    await a.sync.deployed('echo@1.0.0');
    await hear(b);
    assert.deepEqual(b.registry.calls, ['load echo@1.0.0 null', 'loaded echo@1.0.0']);
  });

  it('overrides merge across deploys; a scaling override clears the replica count set by a scale, other overrides keep it', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    await a.sync.deployed('echo', { resources: { memory_mb: 300 } });
    await a.sync.scaled('echo', 3);
    assert.equal((await rowOf(a, 'echo', '1.0.0'))!.replicas, 3);
    assert.equal((await rowOf(a, 'echo', '1.0.0'))!.action, 'deploy');
    await a.sync.deployed('echo', { resources: { cpus: 2 } });
    let row = (await rowOf(a, 'echo', '1.0.0'))!;
    assert.deepEqual(row.overrides, { resources: { cpus: 2 } });
    assert.equal(row.replicas, 3, 'a resources override keeps the scale');
    const scaling = { min_replicas: 1, max_replicas: 4 } as NonNullable<VersionOverrides['scaling']>;
    await a.sync.deployed('echo', { scaling });
    row = (await rowOf(a, 'echo', '1.0.0'))!;
    assert.deepEqual(row.overrides, { resources: { cpus: 2 }, scaling });
    assert.equal(row.replicas, null, 'a scaling override replaces the scale');
    // A deploy without overrides keeps the stored ones; none at all is stored as null.
    await a.sync.deployed('echo');
    assert.deepEqual((await rowOf(a, 'echo', '1.0.0'))!.overrides, { resources: { cpus: 2 }, scaling });
    const c = await gateway(sharedDb(), [['echo', 'echo', '1.0.0']]);
    await c.sync.deployed('echo');
    assert.equal((await rowOf(c, 'echo', '1.0.0'))!.overrides, null);
    await c.sync.deployed('echo', {});
    assert.equal((await rowOf(c, 'echo', '1.0.0'))!.overrides, null);
  });

  it('a scale: B loads then scales; scaled to zero it scales without loading; a scaled update stays an update', async () => {
    const db = sharedDb();
    const versions: Folder[] = [
      ['echo', 'echo', '1.0.0'],
      ['echo2', 'echo', '2.0.0'],
    ];
    const a = await gateway(db, versions);
    const b = await gateway(db, versions);
    await a.sync.deployed('echo@1.0.0');
    await a.sync.scaled('echo@1.0.0', 2);
    await hear(b);
    assert.deepEqual(b.registry.calls, ['load echo@1.0.0 null', 'loaded echo@1.0.0', 'scale echo@1.0.0 2']);

    b.registry.calls.length = 0;
    await a.sync.scaled('echo@1.0.0', 0);
    await hear(b);
    assert.deepEqual(b.registry.calls, ['scale echo@1.0.0 0']);

    b.registry.calls.length = 0;
    await a.sync.updated('echo', '2.0.0');
    await a.sync.scaled('echo@2.0.0', 2);
    const row = (await rowOf(a, 'echo', '2.0.0'))!;
    assert.equal(row.action, 'update');
    assert.equal(row.replicas, 2);
    assert.equal(await rowOf(a, 'echo', '1.0.0'), undefined, "an update drops the model's other version rows");
    await hear(b);
    assert.deepEqual(b.registry.calls, ['update echo 2.0.0 null {"share":false}', 'scale echo@2.0.0 2']);
  });

  it('a rolling update with overrides: B updates with them (routing not shared again), then sets the scale it keeps', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['v2', 'echo', '2.0.0']]);
    const b = await gateway(db, [['v2', 'echo', '2.0.0']]);
    await a.sync.scaled('echo@2.0.0', 3);
    await hear(b);
    b.registry.calls.length = 0;
    await a.sync.updated('echo', '2.0.0', { resources: { memory_mb: 512 } });
    const row = (await rowOf(a, 'echo', '2.0.0'))!;
    assert.equal(row.replicas, 3);
    assert.deepEqual(row.overrides, { resources: { memory_mb: 512 } });
    await hear(b);
    assert.deepEqual(b.registry.calls, [
      'update echo 2.0.0 {"resources":{"memory_mb":512}} {"share":false}',
      'scale echo@2.0.0 3',
    ]);
    b.registry.calls.length = 0;
    await a.sync.updated('echo', '2.0.0', { scaling: { min_replicas: 2 } as NonNullable<VersionOverrides['scaling']> });
    assert.equal((await rowOf(a, 'echo', '2.0.0'))!.replicas, null);
    await hear(b);
    assert.deepEqual(b.registry.calls, [
      'update echo 2.0.0 {"resources":{"memory_mb":512},"scaling":{"min_replicas":2}} {"share":false}',
    ]);
  });

  it('an undeploy unloads the version where it is known; a removal removes the model where it exists', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    const b = await gateway(db, [['echo', 'echo', '1.0.0']]);
    const c = await gateway(db);
    await a.sync.deployed('echo', { resources: { memory_mb: 200 } });
    await hear(b);
    // C has no such package: its deploy fails (said in the log).
    await hear(c);
    assert.deepEqual(c.registry.calls, [`register ${join(c.registry.modelsDir, 'echo')}`]);
    assert.equal(warnings(c).length, 1);
    assert.match(String(warnings(c)[0]), /echo/);
    b.registry.calls.length = 0;
    c.registry.calls.length = 0;

    await a.sync.scaled('echo', 2);
    await a.sync.undeployed('echo@1.0.0');
    const row = (await rowOf(a, 'echo', '1.0.0'))!;
    assert.equal(row.action, 'undeploy');
    assert.deepEqual(row.overrides, { resources: { memory_mb: 200 } }, 'the overrides stay for a later deploy');
    assert.equal(row.replicas, null);
    assert.deepEqual(row.source, { kind: 'models_dir', dir: 'echo' }, 'the source stays for a later deploy');
    await hear(b);
    await hear(c);
    assert.deepEqual(b.registry.calls, ['unload echo@1.0.0 {"share":false}']);
    assert.deepEqual(c.registry.calls, [], 'a version C does not know is not unloaded');

    b.registry.calls.length = 0;
    c.registry.calls.length = 0;
    await a.sync.removed('echo');
    const removal = (await rowOf(a, 'echo', ''))!;
    assert.equal(removal.action, 'remove');
    assert.equal(removal.source, null);
    assert.equal(await rowOf(a, 'echo', '1.0.0'), undefined, "a removal drops the model's version rows");
    await hear(b);
    await hear(c);
    assert.deepEqual(b.registry.calls, ['remove echo {"share":false}']);
    const applying = b.logs.filter((l) => l.msg === 'applying a deployment made through another gateway');
    assert.deepEqual(
      applying.map((l) => [l.model, l.version, l.action]),
      [
        ['echo', '1.0.0', 'deploy'],
        ['echo', '1.0.0', 'undeploy'],
        ['echo', undefined, 'remove'],
      ],
    );
    assert.deepEqual(c.registry.calls, [], 'a model C does not have is not removed');

    // An undeploy of a version with no row (the removal dropped it): nothing to carry over.
    await a.sync.undeployed('echo@1.0.0');
    const bare = (await rowOf(a, 'echo', '1.0.0'))!;
    assert.deepEqual([bare.action, bare.source, bare.overrides, bare.replicas], ['undeploy', null, null, null]);
  });

  it('a gateway that starts later applies the deploys stored before it in their order, but no undeploy or removal', async () => {
    const db = sharedDb();
    const models: Folder[] = [
      ['one', 'one', '1.0.0'],
      ['two', 'two', '1.0.0'],
      ['gone', 'gone', '1.0.0'],
    ];
    const a = await gateway(db, models);
    await a.sync.deployed('two');
    await a.sync.deployed('one');
    await a.sync.deployed('gone');
    await a.sync.undeployed('gone@1.0.0');
    await a.sync.removed('two');
    await a.sync.deployed('two');
    const late = await gateway(db, models, false);
    late.sync.start();
    late.sync.start(); // twice: still once
    await late.sync.settled();
    // In the order of their last change (two was deployed again after one), each model on its own chain.
    assert.deepEqual(late.registry.calls, [
      'load one@1.0.0 null',
      'load two@1.0.0 null',
      'loaded one@1.0.0',
      'loaded two@1.0.0',
    ]);
    // Later changes still arrive once started.
    await a.sync.scaled('one', 2);
    await hear(late);
    assert.equal(late.registry.calls.filter((c) => c === 'scale one@1.0.0 2').length, 1);
  });

  it('packages from a shared path and from an image deploy: B registers the same path, or writes the manifest into its own state dir', async () => {
    const db = sharedDb();
    const a = await gateway(db);
    const b = await gateway(db);
    const shared = writeEchoPackage(tempDir('isomodel-depsync-shared-'), 'pkg', 'outside', '1.0.0');
    a.registry.register(shared);
    const m = httpManifest({ model_id: 'served', version: '3.0.0', docker_image: 'example/served:3' });
    a.registry.register(writeHttpPackage(a.stateDir, m));
    await a.sync.deployed('outside');
    await a.sync.deployed('served');
    assert.deepEqual((await rowOf(a, 'outside', '1.0.0'))!.source, { kind: 'path', dir: shared });
    const image = (await rowOf(a, 'served', '3.0.0'))!.source!;
    assert.equal(image.kind, 'image');
    assert.equal((image as { manifest: { name: string } }).manifest.name, 'served');

    await hear(b);
    const written = join(httpPackagesDir(b.stateDir), 'served', '3.0.0');
    assert.ok(existsSync(join(written, 'model.yaml')), 'the image package is written into B’s state dir');
    // Two models, two chains: their calls interleave, each in its order.
    const of = (name: string, dir: string) => b.registry.calls.filter((c) => c.includes(name) || c.includes(dir));
    assert.deepEqual(of('outside', shared), [`register ${shared}`, 'load outside@1.0.0 null', 'loaded outside@1.0.0']);
    assert.deepEqual(of('served', written), [`register ${written}`, 'load served@3.0.0 null', 'loaded served@3.0.0']);
    assert.equal(b.registry.calls.length, 6);
    assert.equal(b.registry.package('served').manifest.http?.image, 'example/served:3');
  });

  it('a package that is another model on B, or a deploy with no source: said in the log, and later changes of the model still apply', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    // On B the folder "echo" holds another model.
    const b = await gateway(db, [['echo', 'other', '1.0.0']]);
    b.registry.pkgs.clear();
    await a.sync.deployed('echo');
    await hear(b);
    assert.deepEqual(b.registry.calls, [`register ${join(b.registry.modelsDir, 'echo')}`]);
    assert.deepEqual(warnings(b), [
      `the package at ${join(b.registry.modelsDir, 'echo')} is other@1.0.0 here, not echo@1.0.0`,
    ]);
    const warning = b.logs.find((l) => l.msg === 'cannot apply a deployment made through another gateway')!;
    assert.equal(warning.model, 'echo');
    assert.equal(warning.version, '1.0.0');
    assert.equal(warning.action, 'deploy');

    // The same folder holding another version of the model on C (which starts now, so it tries
    // the deploy stored before it, then the scale).
    const c = await gateway(db, [['echo', 'echo', '2.0.0']]);
    c.registry.pkgs.clear();
    await a.sync.scaled('echo', 2);
    await hear(c);
    const mismatch = `the package at ${join(c.registry.modelsDir, 'echo')} is echo@2.0.0 here, not echo@1.0.0`;
    assert.deepEqual(warnings(c), [mismatch, mismatch]);

    // A scale recorded for a version with no stored source (written directly): nothing to register from.
    await a.store.put(
      'ghost',
      '1.0.0',
      () => ({ action: 'deploy', source: null, overrides: null, replicas: 2 }),
      () => {},
    );
    await hear(b);
    assert.equal(warnings(b).at(-1), 'no package source was recorded');
    assert.ok(!b.registry.calls.some((c) => c.includes('ghost')));
  });

  it('changes of one model apply in order; another model does not wait for its slow load', async () => {
    const db = sharedDb();
    const models: Folder[] = [
      ['slow', 'slow', '1.0.0'],
      ['fast', 'fast', '1.0.0'],
    ];
    const a = await gateway(db, models);
    const b = await gateway(db, models);
    const opens: (() => void)[] = [];
    b.registry.gates.set(
      'slow@1.0.0',
      [0, 1].map(() => new Promise<void>((r) => opens.push(r))),
    );
    await a.sync.deployed('slow');
    await b.store.reload();
    await a.sync.scaled('slow', 2);
    await b.store.reload();
    await a.sync.deployed('fast');
    await b.store.reload();
    await flush();
    assert.deepEqual(b.registry.calls, ['load slow@1.0.0 null', 'load fast@1.0.0 null', 'loaded fast@1.0.0']);
    let settled = false;
    void b.sync.settled().then(() => (settled = true));
    await flush();
    assert.equal(settled, false, 'settled() waits for the slow load');
    // The first load ends; the second change's load is under way when a third change arrives:
    // the third waits for it.
    opens[0]!();
    await flush();
    assert.deepEqual(b.registry.calls.slice(3), ['loaded slow@1.0.0', 'load slow@1.0.0 null']);
    await a.sync.scaled('slow', 3);
    await b.store.reload();
    await flush();
    assert.deepEqual(b.registry.calls.slice(5), []);
    opens[1]!();
    await b.sync.settled();
    assert.deepEqual(b.registry.calls.slice(5), [
      'loaded slow@1.0.0',
      'scale slow@1.0.0 2',
      'load slow@1.0.0 null',
      'loaded slow@1.0.0',
      'scale slow@1.0.0 3',
    ]);
    // Nothing is kept of a chain once it is done.
    assert.equal((b.sync as unknown as { chains: Map<string, unknown> }).chains.size, 0);
  });

  it('a failed load is logged and the next change of the model is applied', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    const b = await gateway(db, [['echo', 'echo', '1.0.0']]);
    b.registry.failLoad = 'echo@1.0.0';
    await a.sync.deployed('echo');
    await hear(b);
    assert.deepEqual(warnings(b), ['cannot load echo@1.0.0']);
    b.registry.failLoad = null;
    await a.sync.scaled('echo', 2);
    await hear(b);
    assert.deepEqual(b.registry.calls.slice(-3), ['load echo@1.0.0 null', 'loaded echo@1.0.0', 'scale echo@1.0.0 2']);
  });

  it('after close() nothing more is applied, and a closed sync does not start', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    const b = await gateway(db, [['echo', 'echo', '1.0.0']]);
    const c = await gateway(db, [['echo', 'echo', '1.0.0']], false);
    const d = await gateway(db, [['echo', 'echo', '1.0.0']], false);
    // Who subscribes to the store's changes: once per started sync, never for a closed one.
    const subscribed = new Map<Side, number>();
    for (const side of [c, d]) {
      const on = side.store.onChange.bind(side.store);
      side.store.onChange = (fn) => {
        subscribed.set(side, (subscribed.get(side) ?? 0) + 1);
        on(fn);
      };
    }
    d.sync.start();
    d.sync.start();
    assert.equal(subscribed.get(d), 1);
    b.sync.close();
    c.sync.close();
    await a.sync.deployed('echo');
    await hear(b);
    c.sync.start();
    await c.sync.settled();
    await hear(c);
    assert.deepEqual(b.registry.calls, []);
    assert.deepEqual(c.registry.calls, []);
    assert.equal(subscribed.get(c), undefined);
    await hear(d);
    assert.deepEqual(d.registry.calls, ['load echo@1.0.0 null', 'loaded echo@1.0.0']);
  });

  it('a write the database refuses: an INTERNAL_ERROR saying the change was made here only, and an error in the log', async () => {
    const db = sharedDb();
    const a = await gateway(db, [['echo', 'echo', '1.0.0']]);
    a.sql.db.exec('DROP TABLE model_deployments');
    await assert.rejects(a.sync.deployed('echo'), (e: IsoError) => {
      assert.equal(e.code, 'INTERNAL_ERROR');
      assert.equal(
        e.message,
        'echo@1.0.0 deployed on this gateway, but the shared state database did not record it, so the other gateways do not know of it; repeat the request once the database answers',
      );
      return true;
    });
    const line = a.logs.find((l) => l.msg === 'deployment not recorded in the shared state database')!;
    assert.equal(line.level, 50);
    assert.equal(line.model, 'echo');
    assert.equal(line.version, '1.0.0');
    assert.match(String(line.error), /model_deployments/);
    await assert.rejects(a.sync.removed('echo'), /echo undeployed on this gateway/);
    assert.equal(a.logs.at(-1)!.version, undefined, 'a model-level write names no version');
    await assert.rejects(a.sync.updated('echo', '1.0.0'), /echo updated to 1\.0\.0 on this gateway/);
    await assert.rejects(a.sync.scaled('echo', 1), /echo@1\.0\.0 scaled on this gateway/);
    await assert.rejects(a.sync.undeployed('echo'), /echo@1\.0\.0 undeployed on this gateway/);
  });
});
