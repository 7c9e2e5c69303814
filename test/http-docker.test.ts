// runtime http with http.image: the FastAPI app of test/fixtures/models/http-fastapi (seed 000's
// container shape) as a docker image on the test's own engine (test/dockerd.ts), served unchanged
// through a real gateway: the server's container runs with NetworkMode none, the adapter's joins
// its network namespace. Also seed 002's deploy and PUT bodies with `docker_image` and no path.
// The image is built FROM the locally made isomodel/base:python with Debian's fastapi, uvicorn and
// their pure-Python dependencies copied in (nothing is pulled). Skipped, saying why, where the
// docker tests are (no dockerd, not root) or where python3-fastapi is not installed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type Docker from 'dockerode';
import { dockerdUnavailable, makeBaseImage, removeAllContainers, startDockerd, type Engine } from './dockerd.js';
import { FIXTURES_DIR, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { LONG_SKIP } from './long.js';

const PYTHON = '/usr/bin/python3';
const IMAGE = 'isomodel-test/fastapi-gc:1';
const IMAGE_2 = 'isomodel-test/fastapi-gc:2';
const APP_DIR = join(FIXTURES_DIR, 'http-fastapi');

function fastapiMissing(): string | null {
  try {
    execFileSync(PYTHON, ['-c', 'import fastapi, uvicorn'], { stdio: 'ignore' });
    return null;
  } catch {
    return `${PYTHON} cannot import fastapi and uvicorn (apt-get install python3-fastapi python3-uvicorn)`;
  }
}

/** The top-level dist-packages entries the app and uvicorn (asyncio loop, h11) import. */
function appPackages(): string[] {
  const script = `
import sys
sys.path.insert(0, sys.argv[1])
import app
from uvicorn.config import Config
c = Config("app:app", loop="asyncio", http="h11", ws="none", lifespan="on")
c.load()
import uvicorn.main, uvicorn.protocols.http.h11_impl, uvicorn.lifespan.on, uvicorn.loops.asyncio
root = "/usr/lib/python3/dist-packages/"
print("\\n".join(sorted({m.__file__[len(root):].split("/")[0] for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").startswith(root)})))
`;
  return execFileSync(PYTHON, ['-c', script, APP_DIR], { encoding: 'utf8' })
    .split('\n')
    .filter((n) => n && !['_distutils_hack', 'mpl_toolkits'].includes(n));
}

/** Builds the FastAPI image (app.py unchanged) on the engine, tagged `tag`. */
async function buildAppImage(docker: Docker, tag: string, label: string): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), 'isomodel-fastapi-image-'));
  try {
    const site = join(ctx, 'site');
    mkdirSync(site);
    for (const p of appPackages())
      cpSync(join('/usr/lib/python3/dist-packages', p), join(site, p), {
        recursive: true,
        dereference: true,
        filter: (s) => !s.includes('__pycache__'),
      });
    copyFileSync(join(APP_DIR, 'app.py'), join(ctx, 'app.py'));
    writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        'FROM isomodel/base:python',
        'COPY site/ /usr/lib/python3/dist-packages/',
        'COPY app.py /app/app.py',
        'WORKDIR /app',
        `LABEL test.build=${label}`,
        'CMD ["/usr/bin/python3", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "8000", "--loop", "asyncio", "--http", "h11", "--no-access-log"]',
        '',
      ].join('\n'),
    );
    const stream = await docker.buildImage(
      { context: ctx, src: readdirSync(ctx) },
      { t: tag, networkmode: 'none', rm: true, forcerm: true },
    );
    const events = await new Promise<{ error?: string; stream?: string }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) =>
        err ? reject(err) : resolve(out),
      ),
    );
    const failed = events.find((e) => e.error);
    if (failed) throw new Error(`building ${tag}: ${failed.error}\n${events.map((e) => e.stream ?? '').join('')}`);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const skip = LONG_SKIP || (dockerdUnavailable() ?? fastapiMissing());

describe('runtime http from a docker image, through a real gateway', { skip: skip ?? false }, () => {
  let engine: Engine;
  let h: Harness;
  let extra: string;
  const modelContainers = async (model: string) =>
    (await engine.docker.listContainers({
      all: true,
      filters: { label: [`isomodel.model=${model}`] },
    })) as Docker.ContainerInfo[];
  const role = (cs: Docker.ContainerInfo[], r: string) => cs.filter((c) => c.Labels['isomodel.role'] === r);

  before(async () => {
    engine = await startDockerd();
    makeBaseImage(engine, 'node');
    makeBaseImage(engine, 'python');
    await buildAppImage(engine.docker, IMAGE, '1');
    await buildAppImage(engine.docker, IMAGE_2, '2');
    // The package: a model.yaml only, naming the image (its server, unchanged, is the model).
    extra = workerTmpDir('isomodel-http-image-');
    mkdirSync(join(extra, 'gc-image'));
    writeFileSync(
      join(extra, 'gc-image', 'model.yaml'),
      [
        'name: gc-image',
        'version: 1.0.0',
        'runtime: http',
        'isolation: docker',
        'http:',
        `  image: ${IMAGE}`,
        '  port: 8000',
        '  health_path: /health',
        '  predict_path: /predict',
        '  request: { sequence: $input, task_type: $task, options: $options }',
        '  response: data',
        '  max_response_bytes: 65536',
        '  health_interval_ms: 500',
        'tasks: [{ name: gc_content, sequence_types: [DNA] }]',
        'resources: { memory_mb: 256, timeout_ms: 4000 }',
        'batching: { max_batch_size: 4 }',
        '',
      ].join('\n'),
    );
    h = await startGateway([], { docker: { socket: engine.socket } });
    h.gw.registry.register(join(extra, 'gc-image'));
    await h.gw.registry.load('gc-image');
  });
  after(async () => {
    await h?.close();
    if (engine) {
      await removeAllContainers(engine.docker).catch(() => undefined);
      await engine.stop();
    }
    if (extra) rmSync(extra, { recursive: true, force: true });
  });

  type Out = {
    success: boolean;
    data: Record<string, unknown> & { predictions?: Record<string, unknown>[] };
    error?: { code: string; details?: Record<string, unknown> };
    message: string;
  };

  it('predicts, one item and a batch, through the native API', async () => {
    const r = await h.post<Out>('/models/gc-image/predict', { sequence: 'GGCCAATT', task_type: 'gc_content' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.prediction, 0.5);
    const b = await h.post<Out>('/models/gc-image/predict/batch', { sequences: ['GGGG', 'ATAT', 'GCAT'] });
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.deepEqual(
      (b.body.data.predictions ?? []).map((p) => p.prediction),
      [1, 0, 0.5],
    );
  });

  it('runs the server with no network but its loopback, shared only with its adapter; both unprivileged, read-only', async () => {
    const cs = await modelContainers('gc-image');
    const [server] = role(cs, 'http-server');
    const [adapter] = role(cs, 'http-adapter');
    assert.ok(server && adapter, JSON.stringify(cs.map((c) => c.Labels)));
    const s = await engine.docker.getContainer(server.Id).inspect();
    const a = await engine.docker.getContainer(adapter.Id).inspect();
    assert.equal(s.HostConfig.NetworkMode, 'none');
    assert.equal(a.HostConfig.NetworkMode, `container:${server.Id}`);
    assert.equal(s.Config.Image, (await engine.docker.getImage(IMAGE).inspect()).Id, 'the image as it is, by id');
    for (const c of [s, a]) {
      assert.equal(c.Config.User, '65534:65534');
      assert.equal(c.HostConfig.ReadonlyRootfs, true);
      assert.deepEqual(c.HostConfig.CapDrop, ['ALL']);
      assert.deepEqual(c.HostConfig.PortBindings ?? {}, {}, 'nothing published');
    }
    assert.equal(s.HostConfig.Memory, 256 * 1024 * 1024, "the manifest's memory is the server's");
    assert.ok(s.Config.Env?.includes('PORT=8000'));
    assert.equal(
      a.HostConfig.Memory,
      (128 + 6) * 1024 * 1024,
      'the adapter: node plus room for one batch of answers (4 x 64 KiB)',
    );
  });

  it('refuses an oversized answer with RESPONSE_TOO_LARGE', async () => {
    const r = await h.post<Out>('/models/gc-image/predict', { sequence: 'ACGT', options: { pad_bytes: 100_000 } });
    assert.equal(r.status, 500, JSON.stringify(r.body));
    assert.equal(r.body.error?.details?.worker_code, 'RESPONSE_TOO_LARGE');
  });

  it('times out a hung request and replaces both containers', async () => {
    const before = (await modelContainers('gc-image')).map((c) => c.Id);
    const r = await h.post<Out>('/models/gc-image/predict', { sequence: 'ACGT', options: { sleep_s: 30 } });
    assert.equal(r.status, 504, JSON.stringify(r.body));
    await waitFor(
      async () => {
        const now = await modelContainers('gc-image');
        return now.length === 2 && now.every((c) => !before.includes(c.Id) && c.State === 'running');
      },
      60_000,
      200,
    );
    const ok = await h.post<Out>('/models/gc-image/predict', { sequence: 'GGGG' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('replaces the replica when its server container is killed from outside', async () => {
    await waitFor(
      async () => (await h.post<Out>('/models/gc-image/predict', { sequence: 'GGGG' })).status === 200,
      60_000,
      200,
    );
    const [server] = role(await modelContainers('gc-image'), 'http-server');
    await engine.docker.getContainer(server!.Id).kill({ signal: 'SIGKILL' });
    await waitFor(
      async () => {
        const now = await modelContainers('gc-image');
        return now.length === 2 && now.every((c) => c.Id !== server!.Id && c.State === 'running');
      },
      60_000,
      200,
    );
    const ok = await waitFor(
      async () => {
        const r = await h.post<Out>('/models/gc-image/predict', { sequence: 'GGGG' });
        return r.status === 200 ? r : null;
      },
      60_000,
      200,
    );
    assert.equal(ok!.body.data.prediction, 1);
    assert.equal(
      h.gw.registry.deployment('gc-image')!.replicaInfo()[0]!.last_exit,
      "the model's server container exited (signal SIGKILL)",
    );
  });

  it('fails the load clearly when the image is not on the engine (nothing is pulled)', async () => {
    const dir = join(extra, 'no-image');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'model.yaml'),
      [
        'name: no-image',
        'version: 1.0.0',
        'runtime: http',
        'isolation: docker',
        'http: { image: "isomodel-test/absent:1", port: 8000 }',
        'tasks: [{ name: t, sequence_types: [DNA] }]',
        '',
      ].join('\n'),
    );
    h.gw.registry.register(dir);
    await assert.rejects(
      h.gw.registry.load('no-image'),
      (e: Error & { code?: string }) =>
        e.code === 'MODEL_NOT_LOADED' &&
        /isomodel-test\/absent:1.*not on the docker engine.*pulls nothing/.test(e.message),
    );
  });

  it("deploys seed 002's body with docker_image and no path, then updates it with PUT", async () => {
    const dep = await h.post<Out & { data: { deployed_version?: string } }>('/api/v1/models/deploy', {
      config: {
        model_id: 'deep_tcm_diagnosis',
        name: '深度中医诊断模型',
        version: 'v3.0.1',
        model_type: 'tcm_diagnosis',
        framework: 'tensorflow',
        docker_image: IMAGE,
        resource_requirements: { cpu: '1', memory: '256Mi' },
        scaling_config: { min_replicas: 1, max_replicas: 2, target_cpu_utilization: 70 },
      },
    });
    assert.equal(dep.status, 201, JSON.stringify(dep.body));
    assert.equal(dep.body.data.deployed_version, 'v3.0.1');
    // The default contract is seed 000's: POST /predict {sequence, task_type, options} → data.
    const inf = await h.post<Out>('/api/v1/models/deep_tcm_diagnosis/inference', {
      input_data: 'GGCCAATT',
      parameters: {},
    });
    assert.equal(inf.status, 200, JSON.stringify(inf.body));
    assert.equal(inf.body.data.prediction, 0.5);
    assert.equal(inf.body.data.task_type, 'tcm_diagnosis', 'model_type names the task');
    const first = role(await modelContainers('deep_tcm_diagnosis'), 'http-server');
    assert.equal(first.length, 1);
    assert.equal(
      (await engine.docker.getContainer(first[0]!.Id).inspect()).HostConfig.Memory,
      256 * 1024 * 1024,
      'resource_requirements.memory',
    );

    const put = await request(h.url + '/api/v1/models/deep_tcm_diagnosis', 'PUT', {
      config: { model_id: 'deep_tcm_diagnosis', version: 'v3.0.2', docker_image: IMAGE_2 },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const after = await h.post<Out & { data: { version: string } }>('/api/v1/models/deep_tcm_diagnosis/inference', {
      input_data: 'GGGG',
    });
    assert.equal(after.status, 200, JSON.stringify(after.body));
    assert.equal(after.body.data.version, 'v3.0.2');
    const servers = await waitFor(
      async () => {
        const s = role(await modelContainers('deep_tcm_diagnosis'), 'http-server');
        return s.length === 1 && s[0]!.Labels['isomodel.version'] === 'v3.0.2' ? s : null;
      },
      30_000,
      200,
    );
    assert.equal(
      servers![0]!.ImageID,
      (await engine.docker.getImage(IMAGE_2).inspect()).Id,
      'the new version runs the new image',
    );

    // A body the manifest refuses is refused clearly, naming the field.
    const bad = await h.post<Out>('/api/v1/models/deploy', { config: { model_id: 'Bad Name', docker_image: IMAGE } });
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.equal(bad.body.error?.code, 'VALIDATION_ERROR');
    const badPath = await h.post<Out>('/api/v1/models/deploy', {
      config: { model_id: 'x-model', docker_image: IMAGE, http: { predict_path: 'no-slash' } },
    });
    assert.equal(badPath.status, 422, JSON.stringify(badPath.body));
    assert.match(badPath.body.message, /http\.predict_path/);
  });

  it('leaves no container once the gateway closes', async () => {
    await h.close();
    const left = await engine.docker.listContainers({ all: true, filters: { label: ['isomodel.model'] } });
    assert.deepEqual(
      left.map((c) => c.Names),
      [],
    );
    h = undefined as unknown as Harness;
  });
});

async function request<T>(url: string, method: string, body: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}
