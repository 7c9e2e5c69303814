// Configuration several gateways share through PostgreSQL (database_url), beyond keys and
// splits (scale-out.test.ts): alert rules, deployment specs, and retention of the shared audit
// log. Real gateways on loopback over one real PostgreSQL cluster this file starts in a temp dir
// (skipped, with the reason, where PostgreSQL is not installed).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { httpManifest, writeHttpPackage } from '../src/manifest/http-package.js';
import { AUDIT_INSERT, auditRow } from '../src/security/audit.js';
import { pruneSharedTable } from '../src/store/retention.js';
import { PostgresClient } from '../src/store/sql.js';
import { request, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.js';

/** A tiny Node model whose answers say which model and version computed them. */
function writeModel(dir: string, name: string, version: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'model.yaml'),
    `name: ${name}
version: ${version}
runtime: node
entry: index.mjs
tasks:
  - name: length
    sequence_types: [DNA]
scaling: { min_replicas: 1, max_replicas: 2 }
resources: { memory_mb: 256, timeout_ms: 5000 }
`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export async function predict(batch) { return batch.map((item) => ({ prediction: item.sequence.length, built_by: ${JSON.stringify(`${name}@${version}`)} })); }\n`,
  );
}

/** Waits for `fn` to hold and says how long it took (the bound asserted is a second: the feed's poll is 500 ms). */
async function within(fn: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const t0 = Date.now();
  await waitFor(fn, 5000, 20).catch(() => assert.fail(`${what}: not within 5 s`));
  assert.ok(Date.now() - t0 <= 1000, `${what}: took ${Date.now() - t0} ms`);
}

describe(
  'gateways sharing alert rules, deployments and audit retention through PostgreSQL',
  { skip: pgUnavailable() },
  () => {
    let cluster: PgCluster;
    let url: string;
    let a: Harness;
    let b: Harness;
    let c: Harness | null = null;
    let outside: string;

    before(async () => {
      cluster = await startPgCluster();
      url = await cluster.createDatabase('config');
      const monitor = { interval_ms: 200, thresholds: { cpu_percent: 100_000, memory_percent: 90, disk_percent: 100 } };
      a = await startGateway([], { database_url: url, monitor });
      b = await startGateway([], { database_url: url, monitor });
      for (const h of [a, b]) {
        writeModel(join(h.modelsDir, 'echo-1'), 'echo', '1.0.0');
        assert.equal((await h.post('/v1/models/reload', {})).status, 200);
      }
      // Package folders outside both models dirs that both gateways can read (a shared volume).
      outside = workerTmpDir('isomodel-shared-pkgs-');
      writeModel(join(outside, 'other'), 'other', '1.0.0');
      writeModel(join(outside, 'echo-3'), 'echo', '3.0.0');
    });

    after(async () => {
      await c?.close();
      await a?.close();
      await b?.close();
      await cluster?.destroy();
      if (outside) rmSync(outside, { recursive: true, force: true });
    });

    it('alert rules set through A apply on B within a second; reset through B, A is back on its configuration', async () => {
      const put = await request<any>(`${a.url}/v1/monitor/thresholds`, 'PUT', {
        memory_percent: 42,
        alert_after_samples: 7,
        restart_unhealthy: false,
      });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      await within(() => b.gw.monitor.getSettings().memory_percent === 42, 'the rules set on A on B');
      const onB = (await b.get('/v1/monitor/thresholds')).body.data;
      assert.equal(onB.source, 'runtime');
      assert.equal(onB.alert_after_samples, 7);
      assert.equal(onB.restart_unhealthy, false);
      assert.equal(onB.cpu_percent, 100_000, 'what A did not change stays');

      const reset = await request<any>(`${b.url}/v1/monitor/thresholds`, 'DELETE');
      assert.equal(reset.status, 200);
      await within(() => a.gw.monitor.getSettings().source === 'config', 'the reset on B on A');
      assert.equal(a.gw.monitor.getSettings().memory_percent, 90, 'back to its configuration');
      assert.equal((await b.get('/v1/monitor/thresholds')).body.data.memory_percent, 90);
    });

    it('an alert a gateway raises about its own workers stays that gateway’s', async () => {
      a.gw.monitor.alerts.fire({
        key: 'memory:echo/r9',
        kind: 'memory',
        severity: 'warning',
        message: 'test alert on A',
        model: 'echo',
        replica: 'r9',
        value: 95,
        threshold: 90,
      });
      // (A's next sample resolves it: A has no replica r9. Fired or resolved, it is A's alone.)
      const listed = async (h: Harness) =>
        (await h.get('/v1/monitor/alerts?kind=memory&state=all')).body.data.alerts.map(
          (x: { message: string }) => x.message,
        );
      assert.deepEqual(await listed(a), ['test alert on A']);
      assert.deepEqual(await listed(b), []);
    });

    it('a model deployed through A is served by B; undeployed through A, it is gone from B', async () => {
      const dep = await request<any>(`${a.url}/api/v1/models/deploy`, 'POST', {
        config: { model_id: 'other', path: join(outside, 'other') },
      });
      assert.equal(dep.status, 201, JSON.stringify(dep.body));
      // In force within a second: B knows the model and is loading it (a worker's start takes what it takes).
      await within(
        () =>
          ['loading', 'ready'].includes(
            b.gw.registry.names().includes('other') ? b.gw.registry.status('other@1.0.0') : '',
          ),
        'the deployment on B',
      );
      await waitFor(() => b.gw.registry.status('other@1.0.0') === 'ready', 30_000);
      const inf = await request<any>(`${b.url}/api/v1/models/other/inference`, 'POST', { input_data: 'ACGTA' });
      assert.equal(inf.status, 200, JSON.stringify(inf.body));
      assert.equal(inf.body.data.built_by, 'other@1.0.0');
      assert.ok(b.gw.registry.versions('other')[0]!.pinned, 'loaded as a deployment: pinned');

      const del = await request<any>(`${a.url}/api/v1/models/other`, 'DELETE');
      assert.equal(del.status, 200, JSON.stringify(del.body));
      await within(() => !b.gw.registry.names().includes('other'), 'the undeploy on B');
      const gone = await request<any>(`${b.url}/api/v1/models/other/inference`, 'POST', { input_data: 'ACGTA' });
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error.code, 'MODEL_NOT_FOUND');
    });

    it('a version deployed, scaled and rolled out through A is in force on B, and on a gateway started afterwards', async () => {
      const dep = await request<any>(`${a.url}/api/v1/models/deploy`, 'POST', {
        config: { model_id: 'echo', version: '3.0.0', path: join(outside, 'echo-3') },
      });
      assert.equal(dep.status, 201, JSON.stringify(dep.body));
      await within(() => b.gw.registry.versions('echo').some((v) => v.version === '3.0.0'), 'the new version on B');
      await waitFor(() => b.gw.registry.status('echo@3.0.0') === 'ready', 30_000);
      assert.equal(
        b.gw.registry.defaultVersion('echo'),
        '1.0.0',
        'deployed beside the serving version, it takes no traffic',
      );

      const scaled = await request<any>(`${a.url}/api/v1/models/echo@3.0.0/scale`, 'POST', { replicas: 2 });
      assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
      await waitFor(() => b.gw.registry.deployment('echo@3.0.0')?.replicaInfo().length === 2, 30_000);

      const upd = await request<any>(`${a.url}/api/v1/models/echo`, 'PUT', { config: { version: '3.0.0' } });
      assert.equal(upd.status, 200, JSON.stringify(upd.body));
      await within(() => b.gw.registry.defaultVersion('echo') === '3.0.0', 'the rolling update on B');
      const served = await request<any>(`${b.url}/api/v1/models/echo/inference`, 'POST', { input_data: 'ACGT' });
      assert.equal(served.body.data.built_by, 'echo@3.0.0');
      await waitFor(() => b.gw.registry.status('echo@1.0.0') === 'unloaded', 30_000);

      // A gateway that starts now does what was deployed before it.
      c = await startGateway([], { database_url: url });
      writeModel(join(c.modelsDir, 'echo-1'), 'echo', '1.0.0');
      assert.equal((await c.post('/v1/models/reload', {})).status, 200);
      await c.gw.deploymentSync!.settled();
      await waitFor(() => c!.gw.registry.status('echo@3.0.0') === 'ready', 30_000);
      assert.equal(c.gw.registry.defaultVersion('echo'), '3.0.0');
      assert.equal(c.gw.registry.deployment('echo@3.0.0')?.replicaInfo().length, 2);
      assert.equal(
        (await request<any>(`${c.url}/api/v1/models/echo/inference`, 'POST', { input_data: 'ACGT' })).body.data
          .built_by,
        'echo@3.0.0',
      );
    });

    it('an image deploy recorded through A is written as a package into B’s own state dir', async () => {
      // What the deploy route does for a docker_image body, up to the load (no docker engine needed here).
      const m = httpManifest({ model_id: 'img', version: '1.0.0', docker_image: 'example.invalid/img:1', port: 8080 });
      a.gw.registry.register(writeHttpPackage(a.gw.config.state_dir, m));
      await a.gw.deploymentSync!.deployed('img@1.0.0');
      await within(() => b.gw.registry.names().includes('img'), 'the image deploy on B');
      const pkg = b.gw.registry.package('img@1.0.0');
      assert.ok(pkg.dir.startsWith(join(b.stateDir, 'http-models')), pkg.dir);
      assert.equal(pkg.manifest.http?.image, 'example.invalid/img:1');
      assert.equal(pkg.manifest.http?.port, 8080);
      assert.equal(
        readFileSync(join(pkg.dir, 'model.yaml'), 'utf8'),
        readFileSync(join(a.gw.registry.package('img@1.0.0').dir, 'model.yaml'), 'utf8'),
      );
    });

    it('retention prunes the shared audit log once, bounded by age and by row count', async () => {
      const sql = new PostgresClient(url);
      try {
        await sql.run('DELETE FROM audit_log');
        const entry = (action: string) => auditRow({ actor: 'test', action, outcome: 'allowed', status: 200 });
        for (let i = 0; i < 30; i++) {
          const row = entry(`old.${i}`);
          row[0] = new Date(Date.UTC(2020, 0, 1, 0, i)).toISOString();
          await sql.run(AUDIT_INSERT, row);
        }
        for (let i = 0; i < 5; i++) await sql.run(AUDIT_INSERT, entry(`new.${i}`));
        // Both gateways' schedules run at once: the old rows go, once.
        const [ra, rb] = await Promise.all([a.gw.retention.runAsync(), b.gw.retention.runAsync()]);
        assert.equal((ra['shared audit_log'] ?? 0) + (rb['shared audit_log'] ?? 0), 30);
        const left = await sql.query<{ action: string }>('SELECT action FROM audit_log ORDER BY id');
        assert.deepEqual(
          left.map((r) => r.action),
          ['new.0', 'new.1', 'new.2', 'new.3', 'new.4'],
        );

        // Past a row count the oldest go.
        const policy = { maxAgeMs: 0, maxRows: 2 };
        assert.equal(await pruneSharedTable(sql, { table: 'audit_log', policy }), 3);
        assert.deepEqual(
          (await sql.query<{ action: string }>('SELECT action FROM audit_log ORDER BY id')).map((r) => r.action),
          ['new.3', 'new.4'],
        );

        // While another gateway holds the prune lock, this one skips its turn.
        for (let i = 0; i < 3; i++) await sql.run(AUDIT_INSERT, entry(`more.${i}`));
        const holder = new PostgresClient(url);
        try {
          let release!: () => void;
          const held = new Promise<void>((r) => (release = r));
          let locked!: () => void;
          const isLocked = new Promise<void>((r) => (locked = r));
          const tx = holder.tx(async (q) => {
            await q.query("SELECT pg_advisory_xact_lock(hashtext('isomodel.retention.audit_log'))");
            locked();
            await held;
          });
          await isLocked;
          assert.equal(await pruneSharedTable(sql, { table: 'audit_log', policy }), 0);
          assert.equal((await sql.query('SELECT id FROM audit_log')).length, 5);
          release();
          await tx;
          assert.equal(await pruneSharedTable(sql, { table: 'audit_log', policy }), 3);
        } finally {
          await holder.close();
        }
      } finally {
        await sql.close();
      }
    });
  },
);
