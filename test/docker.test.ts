// isolation: docker — models served from containers of a real Docker engine the test starts
// (dockerd from Debian's docker.io, its own data root and socket, no bridge, no iptables). Base
// images are made from this machine's binaries (deploy/docker/make-base-image.sh); model images
// are built by the driver on first use. Skipped, saying why, where dockerd is missing or we are
// not root; CI installs docker.io and runs as root, so there it runs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { dockerEngine, DockerWorker } from '../src/drivers/docker.js';
import { containerSpec } from '../src/drivers/docker-spec.js';
import { imageTag } from '../src/drivers/docker-image.js';
import { parseContainerStats } from '../src/drivers/docker-stats.js';
import { loadPackage } from '../src/manifest/load.js';
import { manifestSchema } from '../src/manifest/schema.js';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import {
  composeCommand,
  dockerdUnavailable,
  makeBaseImage,
  removeAllContainers,
  startDockerd,
  type Engine,
} from './dockerd.js';
import { FIXTURES_DIR, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { LONG_SKIP } from './long.js';

const MB = 1024 * 1024;
const DOCKER_DIR = join(PACKAGE_ROOT, 'deploy', 'docker');

describe('docker driver: container spec, image tags, stats (no engine needed)', () => {
  const pkg = {
    dir: '/srv/models/m',
    fingerprint: 'x',
    manifest: manifestSchema.parse({
      name: 'm',
      version: '1.2.3+build',
      runtime: 'python',
      entry: 'model.py',
      isolation: 'docker',
      tasks: [{ name: 't', sequence_types: ['DNA'] }],
      resources: { memory_mb: 200, cpus: 4 },
    }),
  };

  it('asks for no network, the limits, a read-only root, no capabilities, an unprivileged user and labels', () => {
    const s = containerSpec({ pkg, replicaId: 'r7', image: 'isomodel/m:1', env: { A: 'b' }, hostCpus: 2 });
    const hc = s.HostConfig!;
    assert.equal(hc.NetworkMode, 'none');
    assert.equal(hc.Memory, 200 * MB);
    assert.equal(hc.MemorySwap, 200 * MB, 'no swap on top of the limit');
    assert.equal(hc.NanoCpus, 2e9, 'cpus capped at the engine host CPU count');
    assert.equal(hc.ReadonlyRootfs, true);
    assert.deepEqual(hc.CapDrop, ['ALL']);
    assert.ok(hc.SecurityOpt?.includes('no-new-privileges'));
    assert.equal(hc.Privileged, false);
    assert.equal(s.User, '65534:65534');
    assert.deepEqual(s.Labels, { 'isomodel.model': 'm', 'isomodel.version': '1.2.3+build', 'isomodel.replica': 'r7' });
    assert.deepEqual(s.Env, ['A=b']);
    assert.deepEqual(s.Cmd, ['python3', '-u', '/opt/isomodel/sdk/python/isomodel_worker.py', '/model/model.py']);
    assert.equal(s.OpenStdin && s.StdinOnce && !s.Tty, true, 'the protocol runs over attached stdin/stdout');
  });

  it('tags images isomodel/<model>:<version> within Docker reference grammar', () => {
    assert.equal(imageTag(pkg.manifest), 'isomodel/m:1.2.3_build');
    assert.equal(imageTag({ ...pkg.manifest, name: 'a._b-', version: '1' }), 'isomodel/a-b:1');
    assert.equal(imageTag({ ...pkg.manifest, name: 'gc__x--y.z', version: '2.0' }), 'isomodel/gc__x--y.z:2.0');
  });

  it('reads memory, CPU, block and network I/O from an engine stats object', () => {
    const s = parseContainerStats({
      memory_stats: { usage: 50 * MB, stats: { total_inactive_file: 10 * MB } },
      cpu_stats: { cpu_usage: { total_usage: 3e9 }, system_cpu_usage: 110e9, online_cpus: 2 },
      precpu_stats: { cpu_usage: { total_usage: 2e9 }, system_cpu_usage: 100e9 },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: 'Read', value: 4096 },
          { op: 'Write', value: 100 },
          { op: 'Read', value: 4 },
          { op: 'Total', value: 4200 },
        ],
      },
      networks: { eth0: { rx_bytes: 10, tx_bytes: 20 }, eth1: { rx_bytes: 1, tx_bytes: 2 } },
    });
    assert.equal(s.memoryBytes, 40 * MB);
    assert.equal(s.cpuPercent, 20, '1 s of CPU over 10 s of 2 cores: 20% of one core');
    assert.deepEqual([s.diskReadBytes, s.diskWriteBytes, s.netRxBytes, s.netTxBytes], [4100, 100, 11, 22]);
    const none = parseContainerStats({ memory_stats: {}, blkio_stats: { io_service_bytes_recursive: null } });
    assert.deepEqual(
      [none.diskReadBytes, none.netRxBytes, none.memoryBytes],
      [0, null, undefined],
      'no interfaces: network unmeasured, not zero',
    );
  });
});

describe('docker driver without an engine', () => {
  it('fails the start with MODEL_NOT_LOADED naming the socket, and reports the exit', async () => {
    const socket = '/tmp/isomodel-no-such-engine.sock';
    const w = new DockerWorker({
      id: 'r1',
      pkg: loadPackage(join(FIXTURES_DIR, 'docker-py')),
      engine: dockerEngine(socket),
      settings: { socket, build: true, build_timeout_s: 10 },
      stateDir: '/tmp',
      logger: pino({ level: 'silent' }),
    });
    const exits: string[] = [];
    w.onExit((i) => exits.push(i.reason));
    await assert.rejects(
      w.start(),
      (e: any) =>
        e.code === 'MODEL_NOT_LOADED' && /docker engine unreachable.*isomodel-no-such-engine\.sock/.test(e.message),
    );
    assert.equal(w.state, 'exited');
    assert.equal(exits.length, 1);
    assert.match(exits[0]!, /failed to start/);
    await w.stop(); // a no-op now
  });
});

describe('deploy/docker: Dockerfiles and compose', () => {
  it('has a Dockerfile per runtime and one for the gateway, each FROM a local isomodel/base image', () => {
    for (const f of ['node', 'python', 'onnx', 'gateway']) {
      const text = readFileSync(join(DOCKER_DIR, `${f}.Dockerfile`), 'utf8');
      assert.match(text, /^ARG BASE=isomodel\/base:(node|python|full)$/m, f);
      assert.match(text, /^FROM \$\{BASE\}$/m, f);
      assert.match(text, /^HEALTHCHECK /m, `${f}: HEALTHCHECK (or an explicit NONE)`);
    }
    assert.match(readFileSync(join(DOCKER_DIR, 'gateway.Dockerfile'), 'utf8'), /^HEALTHCHECK [^]*\/health\/live/m);
  });

  it('compose.yaml runs the gateway and Prometheus with files that exist', () => {
    const file = join(DOCKER_DIR, 'compose.yaml');
    const c = parseYaml(readFileSync(file, 'utf8')) as { services: Record<string, any> };
    const { gateway, prometheus } = c.services;
    assert.ok(gateway && prometheus, 'both services');
    const ctx = resolve(DOCKER_DIR, gateway.build.context);
    assert.ok(existsSync(join(ctx, 'package.json')), 'gateway build context is the repository root');
    assert.ok(existsSync(join(ctx, gateway.build.dockerfile)), gateway.build.dockerfile);
    // Prometheus reuses deploy/prometheus.yml, which scrapes /metrics/prometheus on the gateway.
    const mounts: string[] = prometheus.volumes.filter((v: unknown) => typeof v === 'string');
    const config = mounts.find((v) => v.includes('prometheus.yml'))!;
    const hostPath = resolve(DOCKER_DIR, config.split(':')[0]!);
    assert.equal(hostPath, join(PACKAGE_ROOT, 'deploy', 'prometheus.yml'));
    const prom = parseYaml(readFileSync(hostPath, 'utf8')) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    assert.equal(prom.scrape_configs[0]!.metrics_path, '/metrics/prometheus');
    // Nothing listens beyond loopback: both share the host's network namespace and bind 127.0.0.1.
    for (const s of [gateway, prometheus]) assert.equal(s.network_mode, 'host');
    assert.equal(prom.scrape_configs[0]!.static_configs[0]!.targets[0], '127.0.0.1:8000');
    assert.ok((prometheus.command as string[]).includes('--web.listen-address=127.0.0.1:9090'));
    assert.equal(gateway.environment.ISOMODEL_HOST, '127.0.0.1');
    for (const v of gateway.volumes ?? [])
      if (typeof v === 'string' && v.startsWith('.')) assert.ok(existsSync(resolve(DOCKER_DIR, v.split(':')[0]!)), v);
  });

  const compose = composeCommand();
  it(
    'compose.yaml passes `compose config`',
    { skip: compose ? false : 'no compose implementation installed (docker compose / docker-compose)' },
    () => {
      // Validates the file against the Compose schema; nothing is built, pulled or started.
      execFileSync(compose![0]!, [...compose!.slice(1), '-f', join(DOCKER_DIR, 'compose.yaml'), 'config', '-q'], {
        cwd: DOCKER_DIR,
        stdio: 'pipe',
        timeout: 60_000,
      });
    },
  );
});

const unavailable = LONG_SKIP || dockerdUnavailable();

describe('docker isolation against a real engine', { skip: unavailable ?? false }, () => {
  let engine: Engine;
  let h: Harness;
  const containers = async (model: string, all = false) =>
    engine.docker.listContainers({ all, filters: { label: [`isomodel.model=${model}`] } });
  const replica = async (model: string) =>
    (await h.get(`/health/detailed`)).body.data.models.find((m: any) => m.name === model)?.replicas?.[0];
  const predict = (model: string, body: Record<string, unknown>) => h.post(`/models/${model}/predict`, body);
  /** The one running container of a model, once a fresh replica is ready. */
  const runningContainer = async (model: string, not?: string): Promise<string> =>
    waitFor(
      async () => {
        const r = await replica(model);
        const cs = await containers(model);
        return r?.state === 'ready' && cs.length === 1 && cs[0]!.Id !== not ? cs[0]!.Id : '';
      },
      60_000,
      100,
    );

  let weights: string;

  before(async () => {
    engine = await startDockerd();
    for (const flavour of ['python', 'node'] as const)
      assert.equal(makeBaseImage(engine, flavour), `isomodel/base:${flavour}`);
    // The weights folder an operator (or `isomodel pull --for`) sets: readable by the container's nobody.
    weights = join(workerTmpDir('isomodel-wdocker-'), 'w');
    mkdirSync(weights, { mode: 0o755 });
    writeFileSync(join(weights, 'weights.txt'), 'contained\n', { mode: 0o644 });
    h = await startGateway(['docker-py', 'docker-node', 'weights-docker'], {
      docker: { socket: engine.socket },
      model_env: { 'weights-docker': { WEIGHTS_NODE_PATH: weights } },
    });
  });
  after(async () => {
    await h?.close();
    if (weights) rmSync(join(weights, '..'), { recursive: true, force: true });
    if (engine) {
      await removeAllContainers(engine.docker);
      await engine.stop();
    }
  });

  it('builds the model images and serves predictions from containers (python, node)', async () => {
    for (const m of ['docker-py', 'docker-node'])
      assert.equal((await h.get('/v1/models')).body.data.models.find((x: any) => x.name === m)?.status, 'ready', m);
    const gc = await predict('docker-py', { sequence: 'GGCCAT' });
    assert.equal(gc.status, 200, JSON.stringify(gc.body));
    assert.equal(gc.body.data.gc, 4 / 6);
    const rc = await predict('docker-node', { sequence: 'AACGTTG' });
    assert.equal(rc.status, 200, JSON.stringify(rc.body));
    assert.equal(rc.body.data.reverse_complement, 'CAACGTT');
    const images = await engine.docker.listImages({ filters: { label: ['isomodel.model=docker-py'] } });
    assert.deepEqual(
      images.flatMap((i) => i.RepoTags ?? []),
      ['isomodel/docker-py:1.0.0'],
    );
  });

  it('runs the container with no network, the memory/CPU limits, a read-only root, no capabilities', async () => {
    const [c] = await containers('docker-py');
    assert.ok(c, 'a running container');
    const info = await engine.docker.getContainer(c.Id).inspect();
    assert.equal(info.HostConfig.NetworkMode, 'none');
    assert.equal(info.HostConfig.Memory, 96 * MB);
    assert.equal(info.HostConfig.MemorySwap, 96 * MB);
    assert.equal(info.HostConfig.NanoCpus, 0.5e9);
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.equal(info.Config.User, '65534:65534');
    assert.equal(info.Config.Labels['isomodel.version'], '1.0.0');
    assert.match(info.Config.Labels['isomodel.replica'] ?? '', /^r\d+$/);

    // From inside: only a loopback of its own, unprivileged, nothing writable but /tmp.
    const port = h.gw.address().port;
    const r = await predict('docker-py', { sequence: 'ACGT', options: { action: 'whoami', port } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const me = r.body.data;
    assert.equal(me.uid, 65534);
    assert.deepEqual(me.interfaces, ['lo']);
    assert.equal(me.connect_gateway.ok, false, "the gateway's port is not reachable from the container");
    assert.equal(me.write_model.ok, false);
    assert.equal(me.write_root.ok, false);
    assert.equal(me.write_tmp.ok, true, JSON.stringify(me.write_tmp));
    assert.ok(me.env.includes('ISOMODEL_REPLICA_ID'));
    assert.ok(
      !me.env.some((k: string) => k.startsWith('npm_') || k === 'NODE_TEST_CONTEXT'),
      'the gateway environment stays outside',
    );
  });

  it("mounts the operator's weights folder read-only at the same path", async () => {
    const r = await predict('weights-docker', { sequence: 'ACGT' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.word, 'contained');
    const [c] = await containers('weights-docker');
    const info = await engine.docker.getContainer(c!.Id).inspect();
    assert.deepEqual(
      info.Mounts.map((m) => ({ type: m.Type, source: m.Source, destination: m.Destination, rw: m.RW })),
      [{ type: 'bind', source: weights, destination: weights, rw: false }],
    );
  });

  it('reports the container stats to the monitor (memory, CPU, block I/O)', async () => {
    const m = await waitFor(
      () => {
        const x = h.gw.monitor.modelMetrics('docker-py').replicas[0];
        // The engine's first sample can predate the interpreter's start (a few hundred KiB): wait for
        // one that shows the running worker; a monitor that never gets there fails on the timeout.
        return x && x.rss_bytes !== null && x.rss_bytes > 1 * MB && x.io.disk_read_bytes !== null ? x : undefined;
      },
      15_000,
      100,
    ).then((x) => x!);
    assert.ok(m.rss_bytes! > 1 * MB && m.rss_bytes! < 96 * MB, String(m.rss_bytes));
    assert.equal(typeof m.io.disk_write_bytes, 'number');
    assert.equal(m.io.net_rx_bytes, null, 'NetworkMode none: no interface to count');
  });

  it('a container killed from outside is reported and replaced', async () => {
    const id = await runningContainer('docker-py');
    await engine.docker.getContainer(id).kill({ signal: 'SIGKILL' });
    const fresh = await runningContainer('docker-py', id);
    assert.notEqual(fresh, id);
    const r = await replica('docker-py');
    assert.match(r.last_exit, /crashed \(signal SIGKILL\)/);
    assert.ok(r.restarts >= 1);
    await assert.rejects(
      engine.docker.getContainer(id).inspect(),
      /no such container/i,
      'the dead container was removed',
    );
    assert.equal((await predict('docker-py', { sequence: 'GGGG' })).status, 200);
  });

  it('a memory hog is OOM-killed by the engine and reported as such', async () => {
    const id = await runningContainer('docker-py');
    const since = Math.floor(Date.now() / 1000) - 1;
    const r = await predict('docker-py', { sequence: 'ACGT', options: { action: 'hog', mb: 400 } });
    assert.equal(r.status, 500, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /memory limit exceeded \(96 MB\)/);
    await runningContainer('docker-py', id);
    assert.match((await replica('docker-py')).last_exit, /memory limit exceeded/);
    // The kernel's OOM killer did it (the engine saw the cgroup's oom event), not a MemoryError.
    const events = await engine.docker.getEvents({
      since,
      until: Math.ceil(Date.now() / 1000),
      filters: { event: ['oom'], container: [id] },
    });
    let text = '';
    for await (const chunk of events as AsyncIterable<Buffer>) text += chunk.toString();
    assert.match(text, /"status":"oom"/);
  });

  it('a hung model is killed on its timeout and replaced', async () => {
    const id = await runningContainer('docker-py');
    const t0 = Date.now();
    const r = await predict('docker-py', { sequence: 'ACGT', options: { action: 'sleep', seconds: 60 } });
    assert.equal(r.status, 504, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'PREDICTION_TIMEOUT');
    assert.ok(Date.now() - t0 < 15_000);
    await runningContainer('docker-py', id);
    assert.match((await replica('docker-py')).last_exit, /timed out after 3000 ms/);
    await assert.rejects(engine.docker.getContainer(id).inspect(), /no such container/i);
  });

  it('serves an ONNX model (the built-in promoter) from its container, equal to the process driver', async () => {
    const dir = join(h.modelsDir, 'promoter-docker');
    cpSync(join(BUILTIN_MODELS_DIR, 'promoter'), dir, { recursive: true });
    cpSync(join(BUILTIN_MODELS_DIR, 'promoter'), join(h.modelsDir, 'promoter'), { recursive: true });
    const yaml = readFileSync(join(dir, 'model.yaml'), 'utf8')
      .replace(/^name: promoter$/m, 'name: promoter-docker')
      .replace(/^isolation: process$/m, 'isolation: docker');
    writeFileSync(join(dir, 'model.yaml'), yaml);
    const reload = await h.post('/v1/models/reload');
    assert.equal(reload.status, 200, JSON.stringify(reload.body));
    await waitFor(
      async () =>
        ['ready', 'failed'].includes(
          (await h.get('/v1/models')).body.data.models.find((x: any) => x.name === 'promoter-docker')?.status,
        ),
      120_000,
      200,
    );
    const sequence = 'TACTAGCAATACGCTTGCGTTCGGTGGTTAAGTATGTATAATGCGCGGGCTTGTCGT';
    const inDocker = await predict('promoter-docker', { sequence });
    assert.equal(inDocker.status, 200, JSON.stringify(inDocker.body));
    const inProcess = await predict('promoter', { sequence });
    assert.equal(inProcess.status, 200, JSON.stringify(inProcess.body));
    assert.ok(Math.abs(inDocker.body.data.prediction - inProcess.body.data.prediction) < 1e-6);
    assert.ok(inDocker.body.data.prediction > 0.5);
    assert.equal((await containers('promoter-docker')).length, 1);
  });

  it("the worker's stderr reaches recentLog; stop removes the container", async () => {
    const logger = pino({ level: 'silent' });
    const w = new DockerWorker({
      id: 'log-test',
      pkg: loadPackage(join(FIXTURES_DIR, 'docker-py')),
      engine: dockerEngine(engine.socket),
      settings: { socket: engine.socket, build: true, build_timeout_s: 120 },
      stateDir: h.stateDir,
      logger,
    });
    await w.start();
    try {
      // stderr and stdout are separate streams: the setup line may land just after the ready line.
      await waitFor(() => w.recentLog().some((l) => l.includes('docker-py setup done in /model')), 5000);
      const marker = `marker-${Date.now()}`;
      const out = await w.predict({
        task: 'probe',
        items: [{ sequence: 'GC', options: { action: 'log', text: marker } }],
        timeoutMs: 5000,
      });
      assert.deepEqual(out, [{ gc: 1 }]);
      await waitFor(() => w.recentLog().includes(marker), 5000);
      await w.ping(2000);
      await waitFor(() => (w.stats().rssBytes ?? 0) > 0, 5000, 100);
      assert.ok(w.pid && w.pid > 1, 'the container init pid on the host');
    } finally {
      const id = w.containerId!;
      await w.stop(2000);
      assert.equal(w.state, 'exited');
      await assert.rejects(engine.docker.getContainer(id).inspect(), /no such container/i);
    }
  });

  it('a changed package gets a fresh image on reload; the old one is dropped', async () => {
    const before = (await engine.docker.getImage('isomodel/docker-node:0.1.0').inspect()).Id;
    const entry = join(h.modelsDir, 'docker-node', 'index.mjs');
    writeFileSync(
      entry,
      readFileSync(entry, 'utf8').replace('node: process.version', "node: process.version, rebuilt: 'yes'"),
    );
    const reload = await h.post('/v1/models/reload');
    assert.equal(reload.status, 200, JSON.stringify(reload.body));
    const r = await waitFor(
      async () => {
        const x = await predict('docker-node', { sequence: 'ACGT' });
        return x.status === 200 && x.body.data.rebuilt === 'yes' ? x : undefined;
      },
      60_000,
      200,
    ).then((x) => x!);
    assert.equal(r.body.data.reverse_complement, 'ACGT');
    const rebuilt = (await engine.docker.getImage('isomodel/docker-node:0.1.0').inspect()).Id;
    assert.notEqual(rebuilt, before);
    // The old deployment drains, its container goes, and with it the image nothing tags any more.
    await waitFor(async () => (await containers('docker-node', true)).every((c) => c.ImageID === rebuilt), 20_000, 100);
    await waitFor(
      () =>
        engine.docker
          .getImage(before)
          .inspect()
          .then(
            () => false,
            () => true,
          ),
      20_000,
      100,
    );
  });

  it('unload stops and removes the containers', async () => {
    assert.ok((await containers('docker-py')).length >= 1);
    const r = await h.post('/v1/models/docker-py/unload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(await containers('docker-py', true), [], 'no container left, running or stopped');
    assert.equal((await containers('docker-node')).length, 1, 'other models keep theirs');
  });

  it('closing the gateway removes every container it started', async () => {
    const modelsDir = h.modelsDir;
    await h.close();
    h = undefined as unknown as Harness;
    assert.deepEqual(await engine.docker.listContainers({ all: true }), []);
    assert.equal(existsSync(modelsDir), false);
  });
});
