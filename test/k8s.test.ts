// Kubernetes: rendered manifests (every built-in model, the gateway, deploy/k8s/) validated against
// schemas generated from the official Kubernetes OpenAPI spec, the pod's config and probes checked
// on a real gateway, and the driver run against a fake API server. No live cluster is involved.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  KubeConfig,
  type V1ConfigMap,
  type V1Deployment,
  type V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { renderSelection, writeBundle } from '../src/cli/deploy.js';
import { loadConfig, type Config } from '../src/config/config.js';
import { Gateway } from '../src/gateway.js';
import { KubernetesDriver, rolloutState } from '../src/k8s/driver.js';
import {
  DATABASE_URL_SECRET_KEY,
  PLACEHOLDER_KEY,
  labelValue,
  renderGateway,
  renderModel,
  resourceName,
  toYaml,
  type K8sObject,
} from '../src/k8s/render.js';
import { discoverPackages } from '../src/manifest/load.js';
import { manifestSchema, type Manifest } from '../src/manifest/schema.js';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { startFakeApi, type FakeApi } from './k8s-fake-api.js';
import { SCHEMA_SOURCES, validateObject } from './k8s-schema.js';
import { makeModelsDir, request } from './helpers.js';

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
const DEPLOY_DIR = join(PACKAGE_ROOT, 'deploy', 'k8s');

/** A configuration with nothing from this machine in it (no isomodel.config.yaml, no .env). */
function cleanConfig(overrides: Parameters<typeof loadConfig>[0] = {}): Config {
  return loadConfig({ cwd: mkdtempSync(join(tmpdir(), 'isomodel-k8s-cfg-')), env: {}, ...overrides });
}

function manifest(extra: Record<string, unknown>): Manifest {
  return manifestSchema.parse({
    name: 'toy',
    version: '1.0.0',
    runtime: 'node',
    entry: 'index.mjs',
    tasks: [{ name: 'embedding', sequence_types: ['DNA'] }],
    ...extra,
  });
}

/** What a user applies: the YAML text, parsed back. */
function roundTrip(objects: K8sObject[]): Record<string, any>[] {
  return parseAllDocuments(toYaml(objects, 'header')).map((d) => d.toJS() as Record<string, any>);
}

function assertValid(objects: Record<string, any>[], where: string): void {
  for (const obj of objects)
    assert.deepEqual(validateObject(obj), [], `${where}: ${obj.kind}/${obj.metadata?.name} against ${SCHEMA_SOURCES}`);
}

function find<T>(objects: Record<string, any>[], kind: string): T {
  const o = objects.find((x) => x.kind === kind);
  assert.ok(o, `no ${kind}`);
  return o as T;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) =>
    statSync(join(dir, f)).isDirectory() ? filesUnder(join(dir, f)) : [join(dir, f)],
  );
}

describe('Kubernetes manifests', () => {
  const builtins = discoverPackages(BUILTIN_MODELS_DIR).packages.map((p) => p.manifest);

  it('every built-in model and the gateway render to objects valid against the Kubernetes schemas', () => {
    assert.ok(builtins.length >= 5, 'built-in models found');
    const config = cleanConfig();
    for (const m of builtins) {
      const objs = roundTrip(renderModel(m, { config, gatewayVersion: '0.1.0' }).objects);
      assert.deepEqual(
        objs.map((o) => o.kind),
        ['ConfigMap', 'Service', 'Deployment', 'HorizontalPodAutoscaler', 'NetworkPolicy'],
        m.name,
      );
      assertValid(objs, m.name);
    }
    assertValid(roundTrip(renderGateway(builtins, { config, gatewayVersion: '0.1.0' }).objects), 'gateway');
  });

  it('several gateway replicas read the shared database URL from a Secret, never from the ConfigMap; without one they are refused', () => {
    const config = cleanConfig({ overrides: { database_url: 'postgres://iso:hunter2@db:5432/iso' } });
    const three = renderGateway(builtins, {
      config,
      gatewayVersion: '0.1.0',
      gatewayReplicas: 3,
      databaseUrlSecret: 'isomodel-db',
    });
    assert.ok(
      three.notes.some((n) => /traffic splits and batch jobs through PostgreSQL/.test(n)),
      'the render says what the pods share',
    );
    const objs = roundTrip(three.objects);
    assertValid(objs, 'gateway x3');
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    assert.equal(dep.spec.replicas, 3);
    const env = dep.spec.template.spec.containers[0].env as { name: string; valueFrom?: unknown }[];
    assert.deepEqual(env.find((e) => e.name === 'ISOMODEL_DATABASE_URL')?.valueFrom, {
      secretKeyRef: { name: 'isomodel-db', key: DATABASE_URL_SECRET_KEY },
    });
    assert.doesNotMatch(JSON.stringify(objs), /hunter2/, 'the URL and its password stay out of the rendered objects');
    assert.throws(() => renderGateway(builtins, { config, gatewayReplicas: 2 }), /--database-url-secret/);
    assert.throws(() => renderGateway(builtins, { config, gatewayReplicas: 0, databaseUrlSecret: 'x' }), /at least 1/);
    assert.throws(() => renderGateway(builtins, { config, databaseUrlSecret: 'Bad_Name' }), /not a valid Secret name/);
    const single = roundTrip(renderGateway(builtins, { config, gatewayVersion: '0.1.0' }).objects).find(
      (o) => o.kind === 'Deployment',
    )!;
    assert.equal(single.spec.replicas, 1);
    assert.equal(
      single.spec.template.spec.containers[0].env.some((e: { name: string }) => e.name === 'ISOMODEL_DATABASE_URL'),
      false,
    );
  });

  it('every file under deploy/k8s is valid, and the kustomizations list files that exist', () => {
    const files = filesUnder(DEPLOY_DIR).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4, 'deploy/k8s has manifests');
    let objects = 0;
    for (const f of files) {
      const docs = parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as Record<string, any>);
      if (f.endsWith('kustomization.yaml')) {
        const k = docs[0]!;
        assert.equal(k.kind, 'Kustomization');
        for (const r of k.resources as string[])
          assert.ok(statSync(join(f, '..', r)).isFile(), `${relative(DEPLOY_DIR, f)} lists ${r}`);
        continue;
      }
      assertValid(docs, relative(DEPLOY_DIR, f));
      objects += docs.length;
    }
    assert.ok(objects >= 10);
  });

  it('deploy/k8s is exactly what the renderer produces (else: regenerate, see docs/kubernetes.md)', () => {
    // The checkout's own isomodel.config.yaml, as the regeneration command reads it (environment left out).
    const config = loadConfig({ cwd: PACKAGE_ROOT, env: {}, overrides: { models_dir: BUILTIN_MODELS_DIR } });
    const out = mkdtempSync(join(tmpdir(), 'isomodel-k8s-out-'));
    try {
      writeBundle(out, renderSelection(config, { models: [], gateway: true }, {}).rendered, 'isomodel');
      writeBundle(join(out, 'models'), renderSelection(config, { models: [], all: true }, {}).rendered, 'isomodel');
      const want = filesUnder(out)
        .map((f) => relative(out, f))
        .sort();
      assert.deepEqual(
        filesUnder(DEPLOY_DIR)
          .map((f) => relative(DEPLOY_DIR, f))
          .sort(),
        want,
        'same files',
      );
      for (const f of want)
        assert.equal(
          readFileSync(join(DEPLOY_DIR, f), 'utf8'),
          readFileSync(join(out, f), 'utf8'),
          `deploy/k8s/${f} is stale: node bin/isomodel.js deploy k8s --gateway --out deploy/k8s && node bin/isomodel.js deploy k8s --all --out deploy/k8s/models`,
        );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('rejects broken objects: a typo, a string for an int, a bad enum, a missing required field, a bad label', () => {
    const good = roundTrip(renderModel(manifest({}), { gatewayVersion: '0.1.0' }).objects);
    const dep = find<Record<string, any>>(good, 'Deployment');
    const hpa = find<Record<string, any>>(good, 'HorizontalPodAutoscaler');
    assert.deepEqual(validateObject(dep), []);
    const broken = (f: (d: any) => void, obj = dep): string[] => {
      const copy = structuredClone(obj);
      f(copy);
      return validateObject(copy);
    };
    const typo = broken((d) => {
      const c = d.spec.template.spec.containers[0];
      c.imagePulPolicy = c.imagePullPolicy;
      delete c.imagePullPolicy;
    });
    assert.ok(
      typo.some((e) => /containers\/0\/imagePulPolicy: unknown field/.test(e)),
      typo.join('\n'),
    );
    const typoTop = broken((d) => (d.spec.replica = 2));
    assert.ok(
      typoTop.some((e) => /\/spec\/replica: unknown field/.test(e)),
      typoTop.join('\n'),
    );
    const str = broken((d) => (d.spec.template.spec.containers[0].ports[0].containerPort = '8000'));
    assert.ok(
      str.some((e) => /containerPort/.test(e) && /integer|int32/.test(e)),
      str.join('\n'),
    );
    const float = broken((d) => (d.spec.revisionHistoryLimit = 1.5));
    assert.ok(
      float.some((e) => /revisionHistoryLimit/.test(e)),
      float.join('\n'),
    );
    const en = broken((d) => (d.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes'));
    assert.ok(
      en.some((e) => /imagePullPolicy.*allowed values/.test(e)),
      en.join('\n'),
    );
    const req = broken((h) => delete h.spec.maxReplicas, hpa);
    assert.ok(
      req.some((e) => /maxReplicas/.test(e)),
      req.join('\n'),
    );
    const noSelector = broken((d) => delete d.spec.selector);
    assert.ok(
      noSelector.some((e) => /selector/.test(e)),
      noSelector.join('\n'),
    );
    const label = broken((d) => (d.metadata.labels['app.kubernetes.io/version'] = '1.0.0+build'));
    assert.ok(
      label.some((e) => /bad label value/.test(e)),
      label.join('\n'),
    );
    assert.deepEqual(validateObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }), [
      'no schema for v1/Pod',
    ]);
  });

  it('maps the manifest: resources, GPUs, HPA bounds (min_replicas 0 keeps one pod), probes, security, names', () => {
    assert.equal(manifest({}).resources.gpus, 0, 'gpus defaults to 0');
    for (const gpus of [-1, 1.5, 'one']) assert.throws(() => manifest({ resources: { gpus } }), /gpus/);
    const m = manifest({
      name: 'big_model.v2',
      version: '2.0.0+cuda12',
      resources: { memory_mb: 2048, cpus: 2, gpus: 1 },
      scaling: { min_replicas: 0, max_replicas: 3, idle_timeout_s: 600 },
    });
    const objs = roundTrip(
      renderModel(m, { imageRegistry: 'registry.example.com/team/', gatewayVersion: '0.1.0', namespace: 'ml' }).objects,
    );
    assertValid(objs, m.name);
    const name = resourceName('big_model.v2');
    assert.match(name, /^isomodel-big-model-v2-[0-9a-f]{6}$/);
    assert.notEqual(resourceName('a.b'), resourceName('a-b'));
    assert.notEqual(resourceName('gateway'), 'isomodel-gateway');
    assert.ok(resourceName('x'.repeat(64)).length <= 63);
    assert.equal(labelValue('2.0.0+cuda12'), '2.0.0_cuda12');

    const dep = find<V1Deployment>(objs, 'Deployment');
    assert.equal(dep.metadata!.namespace, 'ml');
    assert.equal(dep.spec!.replicas, undefined, 'the HPA owns the replica count');
    const pod = dep.spec!.template.spec!;
    const [main] = pod.containers;
    assert.equal(main!.image, 'registry.example.com/team/isomodel/gateway:0.1.0');
    assert.equal(pod.initContainers![0]!.image, 'registry.example.com/team/isomodel/big_model.v2:2.0.0_cuda12');
    assert.deepEqual(pod.initContainers![0]!.command!.slice(-2), ['/model', '/models/big_model.v2']);
    // Sized for the in-pod worker pool: one replica requested (min 0 still starts one), three at most.
    assert.deepEqual(main!.resources, {
      requests: { cpu: '2100m', memory: '2304Mi' },
      limits: { cpu: '6500m', memory: '6400Mi', 'nvidia.com/gpu': '1' },
    });
    assert.deepEqual(pod.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    assert.deepEqual(
      [main!.startupProbe!.httpGet!.path, main!.livenessProbe!.httpGet!.path, main!.readinessProbe!.httpGet!.path],
      ['/health/startup', '/health/live', '/health/ready'],
    );
    assert.equal(main!.startupProbe!.failureThreshold! * main!.startupProbe!.periodSeconds!, 600);
    for (const c of [main!, pod.initContainers![0]!])
      assert.deepEqual(c.securityContext, {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
    assert.equal(pod.securityContext!.runAsUser, 65534);
    assert.equal(pod.enableServiceLinks, false);
    assert.equal(pod.automountServiceAccountToken, false);

    const hpa = find<V2HorizontalPodAutoscaler>(objs, 'HorizontalPodAutoscaler');
    assert.equal(hpa.spec!.minReplicas, 1);
    assert.equal(hpa.spec!.maxReplicas, 3);
    assert.equal(hpa.spec!.scaleTargetRef.name, name);
    assert.equal(hpa.spec!.behavior!.scaleDown!.stabilizationWindowSeconds, 600);
    const np = find<Record<string, any>>(objs, 'NetworkPolicy');
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(np.spec.egress, []);

    const open = roundTrip(renderModel(m, { allowEgress: true, networkPolicy: true }).objects);
    assert.deepEqual(find<Record<string, any>>(open, 'NetworkPolicy').spec.policyTypes, ['Ingress']);
    assert.ok(!roundTrip(renderModel(m, { networkPolicy: false }).objects).some((o) => o.kind === 'NetworkPolicy'));
    // No GPU: no GPU limit, no toleration.
    const cpu = find<V1Deployment>(roundTrip(renderModel(manifest({})).objects), 'Deployment').spec!.template.spec!;
    assert.equal(cpu.tolerations, undefined);
    assert.equal(cpu.containers[0]!.resources!.limits!['nvidia.com/gpu'], undefined);
  });

  it("the pod config carries the operator's keys and settings, or a placeholder that locks the API", () => {
    const sha = 'a'.repeat(64);
    const config = cleanConfig({
      overrides: {
        auth: { keys: [{ name: 'ops', sha256: sha, scopes: ['admin'] }] },
        rate_limit: { max: 7 },
        log_level: 'warn',
        model_env: { toy: { W: '/w' }, other: { X: '1' } },
      },
    });
    const r = renderModel(manifest({}), { config });
    assert.deepEqual(r.notes, []);
    const pod = parseYaml(find<V1ConfigMap>(roundTrip(r.objects), 'ConfigMap').data!['isomodel.config.yaml']!);
    assert.deepEqual(pod.auth.keys, [{ name: 'ops', sha256: sha, scopes: ['admin'] }]);
    assert.deepEqual(pod.rate_limit, { max: 7, window_ms: 60000 });
    assert.equal(pod.log_level, 'warn');
    assert.deepEqual(pod.model_env, { toy: { W: '/w' } }, "only this model's environment");
    assert.deepEqual(pod.required_models, ['toy']);
    assert.equal(pod.monitor, undefined, 'defaults are left out');

    const bare = renderModel(manifest({ isolation: 'sandbox' }), {});
    assert.ok(bare.notes.some((n) => /placeholder digest/.test(n)));
    assert.ok(bare.notes.some((n) => /sandbox/.test(n)));
    const text = find<V1ConfigMap>(roundTrip(bare.objects), 'ConfigMap').data!['isomodel.config.yaml']!;
    assert.match(text, /PLACEHOLDER/);
    assert.deepEqual(parseYaml(text).auth.keys, [PLACEHOLDER_KEY]);
  });

  it('a gateway started from the rendered pod config answers the probe routes and refuses the API without a key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-k8s-pod-'));
    chmodSync(dir, 0o755); // the state's work dir is in here: workers (nobody, as root) pass through
    const modelsDir = makeModelsDir(['revcomp']);
    const m = discoverPackages(modelsDir).packages[0]!.manifest;
    const objs = roundTrip(renderModel(m, {}).objects);
    const cfgFile = join(dir, 'isomodel.config.yaml');
    writeFileSync(cfgFile, find<V1ConfigMap>(objs, 'ConfigMap').data!['isomodel.config.yaml']!);
    // The file as mounted and the container's environment, with this machine's paths and loopback instead of the pod's.
    const dep = find<V1Deployment>(objs, 'Deployment');
    const c = dep.spec!.template.spec!.containers[0]!;
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value!]));
    assert.equal(env.ISOMODEL_CONFIG, '/etc/isomodel/isomodel.config.yaml');
    const pod = loadConfig({ cwd: dir, env: { ...env, ISOMODEL_CONFIG: cfgFile } });
    assert.deepEqual(
      [pod.host, pod.port, pod.models_dir, pod.state_dir, pod.watch, pod.cgroups, pod.default_model],
      ['0.0.0.0', 8000, '/models', '/var/lib/isomodel', false, false, 'revcomp'],
    );
    const config = loadConfig({
      cwd: dir,
      env: {
        ...env,
        ISOMODEL_CONFIG: cfgFile,
        ISOMODEL_HOST: '127.0.0.1',
        ISOMODEL_PORT: '0',
        ISOMODEL_MODELS_DIR: modelsDir,
        ISOMODEL_STATE_DIR: join(dir, 'state'),
      },
    });
    const gw = new Gateway(config, pino({ level: 'silent' }));
    try {
      await gw.start();
      const url = `http://127.0.0.1:${gw.address().port}`;
      for (const p of [c.startupProbe!, c.livenessProbe!, c.readinessProbe!])
        assert.equal((await request(url + p.httpGet!.path, 'GET')).status, 200, p.httpGet!.path);
      assert.equal(
        (await request(`${url}/metrics/prometheus`, 'GET')).status,
        200,
        'prometheus.io/path scrapes without a key',
      );
      assert.equal((await request(`${url}/v1/models`, 'GET')).status, 401, 'the placeholder digest locks the API');
    } finally {
      await gw.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(modelsDir, { recursive: true, force: true });
    }
  });
});

describe('Kubernetes driver (against a fake API server, not a cluster)', () => {
  let api: FakeApi;
  let work: string;
  let kubeconfig: string;

  before(async () => {
    api = await startFakeApi();
    work = mkdtempSync(join(tmpdir(), 'isomodel-k8s-drv-'));
    kubeconfig = join(work, 'kubeconfig');
    writeFileSync(kubeconfig, api.kubeconfig());
  });
  after(async () => {
    await api.close();
    rmSync(work, { recursive: true, force: true });
  });

  const driver = (): KubernetesDriver => KubernetesDriver.fromKubeconfig({ kubeconfig });

  it('rolloutState follows kubectl rollout status', () => {
    const d = (status: Record<string, unknown>, generation = 2, replicas = 2): V1Deployment => ({
      metadata: { generation },
      spec: { replicas, selector: {}, template: {} },
      status,
    });
    assert.match(rolloutState(d({ observedGeneration: 1 })).message, /observe generation 2/);
    assert.match(rolloutState(d({ observedGeneration: 2, updatedReplicas: 1, replicas: 2 })).message, /1 of 2 updated/);
    assert.match(
      rolloutState(d({ observedGeneration: 2, updatedReplicas: 2, replicas: 3 })).message,
      /1 old replicas pending/,
    );
    assert.match(
      rolloutState(d({ observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 1 })).message,
      /1 of 2 updated replicas available/,
    );
    assert.equal(
      rolloutState(d({ observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 })).done,
      true,
    );
    assert.ok(
      rolloutState(
        d({
          observedGeneration: 2,
          conditions: [
            { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out' },
          ],
        }),
      ).failed,
    );
  });

  it('`isomodel deploy k8s --apply --watch` server-side applies every object and waits for the rollouts', async () => {
    const env = { ...process.env, KUBECONFIG: '' };
    const { stdout } = await run(
      process.execPath,
      [
        BIN,
        '--models-dir',
        BUILTIN_MODELS_DIR,
        'deploy',
        'k8s',
        'revcomp',
        'promoter',
        '--gateway',
        '--apply',
        '--watch',
        '--kubeconfig',
        kubeconfig,
        '--timeout',
        '30',
      ],
      { cwd: work, env },
    );
    assert.match(stdout, /created namespace isomodel/);
    for (const d of ['isomodel-gateway', 'isomodel-revcomp', 'isomodel-promoter']) {
      assert.match(stdout, new RegExp(`applied Deployment/${d}\\n`));
      assert.match(stdout, new RegExp(`deployment/${d} is available`));
    }
    const applies = api.requests.filter((r) => r.method === 'PATCH');
    assert.equal(applies.length, 4 + 5 + 5, 'gateway: 4 objects, each model: 5');
    for (const r of applies) {
      assert.equal(r.contentType, 'application/apply-patch+yaml');
      assert.deepEqual([r.query.fieldManager, r.query.force], ['isomodel', 'true']);
      assert.equal(r.authorization, `Bearer ${api.token}`);
    }
    // What client-node sent is exactly what was rendered: its serializer dropped no field.
    const config = cleanConfig({ overrides: { models_dir: BUILTIN_MODELS_DIR } });
    const rendered = roundTrip(
      renderSelection(config, { models: ['revcomp', 'promoter'], gateway: true }, {}).rendered.flatMap(
        (r) => r.objects,
      ),
    );
    assert.deepEqual(
      applies.map((r) => r.body),
      rendered,
    );
    assert.ok(
      api.requests.some(
        (r) =>
          r.method === 'GET' && r.query.watch === 'true' && r.query.fieldSelector === 'metadata.name=isomodel-revcomp',
      ),
    );
  });

  it('re-applying unchanged objects leaves the generation alone; a change bumps it and rolls out again', async () => {
    const m = discoverPackages(BUILTIN_MODELS_DIR).packages.find((p) => p.manifest.name === 'revcomp')!.manifest;
    const objs = renderModel(m, { gatewayVersion: '0.1.0' }).objects;
    const drv = driver();
    const first = (await drv.apply(objs)).find((a) => a.kind === 'Deployment')!;
    const again = (await drv.apply(objs)).find((a) => a.kind === 'Deployment')!;
    assert.equal(again.generation, first.generation);
    const changed = renderModel(m, { gatewayVersion: '0.2.0' }).objects;
    const bumped = (await drv.apply(changed)).find((a) => a.kind === 'Deployment')!;
    assert.equal(bumped.generation, first.generation! + 1);
    const d = await drv.waitForRollout('isomodel', 'isomodel-revcomp', { timeoutMs: 10_000 });
    assert.equal(d.status!.observedGeneration, bumped.generation);
  });

  it('a rollout that never becomes available times out with the last status; a progress deadline fails it', async () => {
    const objs = renderModel(manifest({ name: 'stuck' }), {}).objects;
    api.rollout = 'stuck';
    try {
      await driver().apply(objs);
      const t0 = Date.now();
      await assert.rejects(
        driver().waitForRollout('isomodel', 'isomodel-stuck', { timeoutMs: 400 }),
        /not available after 0 s: 0 of 1 updated replicas available/,
      );
      assert.ok(Date.now() - t0 < 3000);
      api.rollout = 'deadline';
      await driver().apply(renderModel(manifest({ name: 'stuck', version: '1.0.1' }), {}).objects);
      await assert.rejects(
        driver().waitForRollout('isomodel', 'isomodel-stuck', { timeoutMs: 5000 }),
        /rollout failed: ReplicaSet .* has timed out progressing/,
      );
    } finally {
      api.rollout = 'available';
    }
  });

  it('opens the watch again when the server closes it', async () => {
    api.closeWatchesAfterMs = 20;
    api.stepMs = 150;
    try {
      await driver().apply(renderModel(manifest({ name: 'flaky' }), {}).objects);
      const seen: string[] = [];
      await driver().waitForRollout('isomodel', 'isomodel-flaky', {
        timeoutMs: 10_000,
        onProgress: (m) => seen.push(m),
      });
      const watches = api.requests.filter(
        (r) => r.query.watch === 'true' && r.query.fieldSelector === 'metadata.name=isomodel-flaky',
      );
      assert.ok(watches.length >= 3, `${watches.length} watches`);
      assert.ok(seen.length >= 2, seen.join(' | '));
    } finally {
      api.closeWatchesAfterMs = 0;
      api.stepMs = 30;
    }
  });

  it('delete removes the objects, and deleting again is a no-op; API errors carry the server message', async () => {
    const objs = renderModel(manifest({ name: 'gone' }), {}).objects;
    const drv = driver();
    await drv.apply(objs);
    assert.ok([...api.objects.keys()].some((k) => k.endsWith('/deployments/isomodel-gone')));
    assert.deepEqual(await drv.delete(objs), [
      'NetworkPolicy/isomodel-gone',
      'HorizontalPodAutoscaler/isomodel-gone',
      'Deployment/isomodel-gone',
      'Service/isomodel-gone',
      'ConfigMap/isomodel-gone-config',
    ]);
    assert.ok(![...api.objects.keys()].some((k) => k.includes('isomodel-gone')));
    assert.deepEqual(await drv.delete(objs), []);
    await assert.rejects(
      drv.apply(renderModel(manifest({ name: 'x' }), { namespace: 'missing' }).objects),
      /apply ConfigMap\/isomodel-x-config: HTTP 404: namespaces "missing" not found/,
    );
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfig().replace(api.token, 'wrong'));
    await assert.rejects(new KubernetesDriver(kc).apply(objs), /HTTP 401/);
  });

  it('`isomodel deploy k8s --out` writes a kustomize folder; --delete removes what it rendered', async () => {
    const out = join(work, 'out');
    const env = { ...process.env, KUBECONFIG: '' };
    const w = await run(
      process.execPath,
      [
        BIN,
        '--models-dir',
        BUILTIN_MODELS_DIR,
        'deploy',
        'k8s',
        'revcomp',
        '--out',
        out,
        '--apply',
        '--kubeconfig',
        kubeconfig,
      ],
      { cwd: work, env },
    );
    assert.match(w.stdout, /wrote .*revcomp\.yaml/);
    assert.match(w.stdout, /applied Deployment\/isomodel-revcomp/);
    assert.deepEqual(parseYaml(readFileSync(join(out, 'kustomization.yaml'), 'utf8')).resources, [
      'namespace.yaml',
      'revcomp.yaml',
    ]);
    assertValid(
      parseAllDocuments(readFileSync(join(out, 'revcomp.yaml'), 'utf8')).map((d) => d.toJS()),
      'revcomp.yaml',
    );
    const del = await run(
      process.execPath,
      [BIN, '--models-dir', BUILTIN_MODELS_DIR, 'deploy', 'k8s', 'revcomp', '--delete', '--kubeconfig', kubeconfig],
      { cwd: work, env },
    );
    assert.match(del.stdout, /deleted Deployment\/isomodel-revcomp/);
    assert.ok(![...api.objects.keys()].some((k) => k.includes('isomodel-revcomp')));
    assert.throws(
      () => renderSelection(cleanConfig({ overrides: { models_dir: BUILTIN_MODELS_DIR } }), { models: ['nope'] }, {}),
      /no model "nope"/,
    );
    assert.throws(
      () => renderSelection(cleanConfig({ overrides: { models_dir: BUILTIN_MODELS_DIR } }), { models: [] }, {}),
      /name one or more models/,
    );
  });
});
