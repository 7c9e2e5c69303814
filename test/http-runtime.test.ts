// runtime http: a model that is an existing HTTP server, served unchanged. The server here is a
// FastAPI app written the way seed 000's containers are (test/fixtures/models/http-fastapi/app.py,
// Debian's python3-fastapi and python3-uvicorn under /usr/bin/python3), started by isomodel as a
// process beside the adapter that speaks the worker protocol (worker/http-adapter.ts). The docker
// form (http.image) is in test/http-docker.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { manifestSchema } from '../src/manifest/schema.js';
import { findBwrap } from '../src/drivers/sandbox.js';
import { httpManifest, writeHttpPackage } from '../src/manifest/http-package.js';
import { loadPackage } from '../src/manifest/load.js';
import { atPath, fillTemplate } from '../src/worker/http-adapter.js';
import { pidAlive, startGateway, waitFor, type Harness } from './helpers.js';

const FASTAPI = '/usr/bin/python3';

/** Why the FastAPI server cannot run here, or null. */
function fastapiMissing(): string | null {
  try {
    execFileSync(FASTAPI, ['-c', 'import fastapi, uvicorn'], { stdio: 'ignore' });
    return null;
  } catch {
    return `${FASTAPI} cannot import fastapi and uvicorn (apt-get install python3-fastapi python3-uvicorn)`;
  }
}

const base = { name: 'm', version: '1', tasks: [{ name: 't', sequence_types: ['DNA'] }] };
const messages = (raw: unknown): string[] => {
  const r = manifestSchema.safeParse(raw);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('runtime http: manifest', () => {
  it('takes a command form and an image form, with defaults', () => {
    const cmd = manifestSchema.parse({
      ...base,
      runtime: 'http',
      entry: ['/usr/bin/server', '--port', '{port}'],
      http: {},
    });
    assert.deepEqual(
      { ...cmd.http, request: cmd.http!.request },
      {
        health_path: '/health',
        predict_path: '/predict',
        method: 'POST',
        request: '$input',
        response: '',
        batch: 'item',
        max_response_bytes: 4 * 1024 * 1024,
        startup_timeout_ms: 60_000,
        health_interval_ms: 5000,
        health_timeout_ms: 2000,
        unhealthy_after: 3,
      },
    );
    const img = manifestSchema.parse({
      ...base,
      runtime: 'http',
      isolation: 'docker',
      http: { image: 'my-org/server:1.0', port: 8000 },
    });
    assert.deepEqual(img.entry, [], 'no entry: the image runs its own command');
  });

  it('refuses bad combinations, each with what to do', () => {
    assert.deepEqual(messages({ ...base, runtime: 'http', entry: ['x'] }), [
      'http: runtime "http" needs an http section (health_path, predict_path, … and image or entry)',
    ]);
    assert.deepEqual(messages({ ...base, runtime: 'http', http: {} }), [
      'entry: runtime "http" needs entry (the server\'s command line) or http.image',
    ]);
    assert.deepEqual(
      messages({ ...base, runtime: 'http', isolation: 'docker', entry: ['x'], http: { image: 'a/b:1', port: 80 } }),
      ["entry: give either http.image (the server is that image) or entry (the server's command line), not both"],
    );
    assert.deepEqual(messages({ ...base, runtime: 'http', http: { image: 'a/b:1', port: 80 } }), [
      'isolation: http.image runs as a container: set isolation: docker',
    ]);
    assert.deepEqual(messages({ ...base, runtime: 'http', isolation: 'docker', http: { image: 'a/b:1' } }), [
      "http.port: required with http.image: the port the image's server listens on",
    ]);
    assert.deepEqual(messages({ ...base, runtime: 'http', isolation: 'docker', entry: ['x'], http: {} }), [
      'http.image: isolation docker runs an http model from an image: set http.image, or use isolation process or sandbox for a command',
    ]);
    assert.deepEqual(messages({ ...base, runtime: 'http', entry: ['x'], http: { batch: 'list' } }), [
      'http.request: batch: list needs "$inputs" (the list of inputs) in the request template',
    ]);
    assert.deepEqual(
      messages({
        ...base,
        runtime: 'http',
        entry: ['x'],
        http: { batch: 'list', request: { a: '$inputs', b: '$input' } },
      }),
      ['http.request: "$input" is one item\'s input: with batch: list, use "$inputs"'],
    );
    assert.deepEqual(messages({ ...base, runtime: 'http', entry: ['x'], http: { request: ['$inputs'] } }), [
      'http.request: "$inputs" is for batch: list; one item\'s input is "$input"',
    ]);
    assert.deepEqual(messages({ ...base, runtime: 'python', entry: 'm.py', http: {} }), [
      'http: only runtime "http" takes an http section',
    ]);
    assert.deepEqual(messages({ ...base, runtime: 'python' }), ['entry: required']);
    assert.match(
      messages({ ...base, runtime: 'http', entry: ['x'], http: { predict_path: '/a b\r\nHost: evil' } })[0]!,
      /^http\.predict_path: a URL path/,
    );
    assert.match(
      messages({ ...base, runtime: 'http', entry: ['x'], http: { predict_path: 'predict' } })[0]!,
      /^http\.predict_path: a URL path/,
    );
    assert.match(
      messages({ ...base, runtime: 'http', isolation: 'docker', http: { image: 'Bad Image', port: 1 } })[0]!,
      /^http\.image: a docker image reference/,
    );
    assert.match(
      messages({ ...base, runtime: 'http', entry: ['x'], http: { max_response_bytes: 1e9 } })[0]!,
      /^http\.max_response_bytes/,
    );
    assert.match(
      messages({ ...base, runtime: 'http', entry: ['x'], http: { response: 'a..b' } })[0]!,
      /^http\.response: a dot path/,
    );
    assert.match(messages({ ...base, runtime: 'http', entry: ['x'], http: { method: 'GET' } })[0]!, /^http\.method/);
  });

  it('maps an item into the request template and takes the output at the response path', () => {
    const body = fillTemplate(
      { sequence: '$input', task_type: '$task', options: '$options', keep: ['$input', '$other', 3] },
      { $input: 'ACGT', $task: 't', $options: { a: 1 } },
    );
    assert.deepEqual(body, { sequence: 'ACGT', task_type: 't', options: { a: 1 }, keep: ['ACGT', '$other', 3] });
    assert.equal(atPath({ data: { predictions: [{ p: 1 }, { p: 2 }] } }, 'data.predictions.1.p'), 2);
    assert.equal(atPath({ data: 1 }, 'data.x'), undefined);
    assert.equal(atPath({ data: 1 }, 'constructor'), undefined, 'only own keys');
    assert.deepEqual(atPath([1], ''), [1]);
  });
});

describe("runtime http: packages from seed 002's docker_image bodies", () => {
  it("writes seed 000's contract by default, keeps a serving version's settings on update, and refuses a changed rewrite", () => {
    const state = mkdtempSync(join(tmpdir(), 'isomodel-http-pkg-'));
    try {
      const m = httpManifest({
        model_id: 'deep_tcm_diagnosis',
        version: 'v3.0.1',
        docker_image: 'suoke/tcm-diagnosis:v3.0.1',
        model_type: 'tcm_diagnosis',
        name: 'TCM',
      });
      assert.deepEqual(
        [m.runtime, m.isolation, m.http?.image, m.http?.port, m.http?.predict_path, m.http?.response],
        ['http', 'docker', 'suoke/tcm-diagnosis:v3.0.1', 8000, '/predict', 'data'],
      );
      assert.deepEqual(m.http?.request, { sequence: '$input', task_type: '$task', options: '$options' });
      assert.deepEqual(
        m.tasks.map((t) => t.name),
        ['tcm_diagnosis'],
      );
      const dir = writeHttpPackage(state, m);
      assert.equal(dir, join(state, 'http-models', 'deep_tcm_diagnosis', 'v3.0.1'));
      const loaded = loadPackage(dir).manifest;
      assert.deepEqual(
        [loaded.http, loaded.tasks.map((t) => t.name)],
        [m.http, ['tcm_diagnosis']],
        'the written package reads back as the same manifest',
      );
      assert.equal(writeHttpPackage(state, m), dir, 'the same deploy again is a no-op');
      const custom = httpManifest({
        model_id: 'deep_tcm_diagnosis',
        version: 'v3.0.1',
        docker_image: 'suoke/tcm-diagnosis:v3.0.1',
        port: 9000,
      });
      assert.throws(
        () => writeHttpPackage(state, custom),
        (e: Error & { code?: string }) => e.code === 'CONFLICT',
      );
      const next = httpManifest(
        { model_id: 'deep_tcm_diagnosis', version: 'v3.0.2', docker_image: 'suoke/tcm-diagnosis:v3.0.2' },
        httpManifest({
          ...{ model_id: 'deep_tcm_diagnosis', version: 'v3.0.1', docker_image: 'a/b:1' },
          port: 9000,
          http: { predict_path: '/infer' },
        }),
      );
      assert.deepEqual(
        [next.http?.image, next.http?.port, next.http?.predict_path],
        ['suoke/tcm-diagnosis:v3.0.2', 9000, '/infer'],
        'PUT keeps what the body does not change',
      );
      assert.throws(
        () => httpManifest({ model_id: '../x', version: '1', docker_image: 'a/b:1' }),
        (e: Error & { code?: string }) => e.code === 'VALIDATION_ERROR',
      );
      assert.throws(
        () => httpManifest({ model_id: 'x', version: '../1', docker_image: 'a/b:1' }),
        (e: Error & { code?: string }) => e.code === 'VALIDATION_ERROR' && /version/.test(e.message),
      );
      assert.equal(
        httpManifest({ model_id: 'x', version: '1', docker_image: 'a/b:1', http: { image: 'other/image:1' } }).http
          ?.image,
        'a/b:1',
        'docker_image is the image',
      );
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

/** The fixture with its model.yaml changed by `edit` (in the gateway's models dir), reloaded. */
async function editFixture(h: Harness, name: string, edit: (m: Record<string, unknown>) => void): Promise<void> {
  const file = join(h.modelsDir, name, 'model.yaml');
  const m = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(m);
  writeFileSync(file, toYaml(m));
}

describe(
  'runtime http: a FastAPI server as a process, through a real gateway',
  { skip: fastapiMissing() ?? false },
  () => {
    let h: Harness;
    before(async () => {
      h = await startGateway(['http-fastapi']);
      assert.equal(
        h.gw.registry.status('http-fastapi'),
        'ready',
        JSON.stringify(h.gw.registry.versions('http-fastapi')),
      );
    });
    after(async () => h?.close());

    type Out = {
      success: boolean;
      data: Record<string, unknown> & { predictions?: Record<string, unknown>[] };
      error?: { code: string; details?: Record<string, unknown> };
      message: string;
    };

    it("predicts through the native envelope: the server's data is the output", async () => {
      const r = await h.post<Out>('/models/http-fastapi/predict', { sequence: 'GGCCAATT', task_type: 'gc_content' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.success, true);
      assert.equal(r.body.data.prediction, 0.5);
      assert.equal(r.body.data.sequence_length, 8);
      assert.equal(r.body.data.task_type, 'gc_content', '$task reached the server');
      assert.equal(typeof r.body.data.pid, 'number');
    });

    it("sends a batch request's items one by one to the server, in order, through the scheduler's batching", async () => {
      const seqs = ['GGGG', 'ATAT', 'GCAT', 'GGGA', 'CCCC', 'AAAA'];
      const r = await h.post<Out>('/models/http-fastapi/predict/batch', { sequences: seqs, task_type: 'gc_content' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const preds = (r.body.data.predictions ?? []).map((x) => x.prediction);
      assert.deepEqual(preds, [1, 0, 0.5, 0.75, 1, 0]);
      // Counted per model like every other model's requests.
      const m = await h.get<string>('/metrics/prometheus');
      assert.match(m.body, /isomodel_requests_total\{[^}]*model="http-fastapi"/);
    });

    it("answers a server's oversized response with RESPONSE_TOO_LARGE, and keeps serving", async () => {
      const r = await h.post<Out>('/models/http-fastapi/predict', {
        sequence: 'ACGT',
        options: { pad_bytes: 400_000 },
      });
      assert.equal(r.status, 500, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, 'PREDICTION_FAILED');
      assert.equal(r.body.error?.details?.worker_code, 'RESPONSE_TOO_LARGE');
      assert.match(r.body.message, /max_response_bytes \(262144/);
      const ok = await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT', options: { pad_bytes: 1000 } });
      assert.equal(ok.status, 200);
      assert.equal((ok.body.data.padding as string).length, 1000);
    });

    it('times out a hung request (504) and replaces the replica, whose server goes with it', async () => {
      const before = (await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT' })).body.data.pid as number;
      const r = await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT', options: { sleep_s: 30 } });
      assert.equal(r.status, 504, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, 'PREDICTION_TIMEOUT');
      await waitFor(() => !pidAlive(before), 10_000);
      const next = await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT' });
      assert.equal(next.status, 200, JSON.stringify(next.body));
      assert.notEqual(next.body.data.pid, before, 'a fresh server');
    });

    it('replaces the replica when its server is killed', async () => {
      const pid = (await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT' })).body.data.pid as number;
      process.kill(pid, 'SIGKILL');
      const next = await waitFor(
        async () => {
          const r = await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT' });
          return r.status === 200 ? r : null;
        },
        30_000,
        200,
      );
      assert.notEqual(next!.body.data.pid, pid);
      const replicas = h.gw.registry.deployment('http-fastapi')!.replicaInfo();
      assert.ok(
        replicas.some((x) => x.restarts > 0),
        JSON.stringify(replicas),
      );
      assert.equal(replicas[0]!.last_exit, "the model's server exited");
    });

    it('replaces the replica when its server stays unhealthy', async () => {
      const pid = (
        await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT', options: { make_unhealthy: true } })
      ).body.data.pid as number;
      // /health answers 503 from now on: two failed checks 300 ms apart end the replica.
      await waitFor(() => !pidAlive(pid), 15_000, 50);
      await waitFor(
        () =>
          h.gw.registry.deployment('http-fastapi')!.replicaInfo()[0]!.last_exit ===
          "the model's server failed its health checks",
        10_000,
        50,
      );
      const next = await waitFor(
        async () => {
          const r = await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT' });
          return r.status === 200 ? r : null;
        },
        30_000,
        200,
      );
      assert.notEqual(next!.body.data.pid, pid);
    });

    it(
      "runs the server as the worker user in the replica's network namespace when the gateway is root",
      { skip: process.getuid?.() !== 0 ? 'not root' : false },
      async () => {
        const pid = (await h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT' })).body.data.pid as number;
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
        assert.notEqual(uid, 0, 'not root');
        const netns = (p: number | string): string =>
          execFileSync('readlink', [`/proc/${p}/ns/net`])
            .toString()
            .trim();
        assert.notEqual(
          netns(pid),
          netns('self'),
          'its own network namespace: the gateway cannot reach it, it cannot reach the gateway',
        );
      },
    );

    it('fails the load saying why when the server cannot start or dies before it is healthy', async () => {
      const cases: [string, string[], RegExp][] = [
        [
          'http-missing',
          ['/nonexistent/server', '--port', '{port}'],
          /could not start the model's server \/nonexistent\/server/,
        ],
        [
          'http-dies',
          [FASTAPI, '-c', 'import sys; sys.exit(3)'],
          /the model's server exited before it was healthy \(exit code 3\)/,
        ],
      ];
      for (const [name, entry, why] of cases) {
        const dir = join(h.modelsDir, name);
        mkdirSync(dir);
        chmodSync(dir, 0o755);
        writeFileSync(
          join(dir, 'model.yaml'),
          toYaml({
            name,
            version: '1.0.0',
            runtime: 'http',
            entry,
            http: {},
            tasks: [{ name: 't', sequence_types: ['DNA'] }],
            required: false,
          }),
        );
        h.gw.registry.register(dir);
        await assert.rejects(
          h.gw.registry.load(name),
          (e: Error & { code?: string }) => e.code === 'MODEL_NOT_LOADED' && why.test(e.message),
          name,
        );
      }
    });

    it('scales like any model: each replica its own server on its own port', async () => {
      const r = await h.post<Out>('/api/v1/models/http-fastapi/scale', { replicas: 2 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const d = h.gw.registry.deployment('http-fastapi')!;
      await waitFor(() => d.replicaInfo().filter((x) => x.state === 'ready').length === 2, 60_000, 100);
      // Concurrent requests spread over both replicas; each answers from its own server.
      const pids = new Set<number>();
      await waitFor(
        async () => {
          const rs = await Promise.all(
            [1, 2, 3, 4].map(() =>
              h.post<Out>('/models/http-fastapi/predict', { sequence: 'ACGT', options: { sleep_s: 0.2 } }),
            ),
          );
          for (const x of rs) if (x.status === 200) pids.add(x.body.data.pid as number);
          return pids.size === 2;
        },
        30_000,
        100,
      );
      assert.equal((await h.post<Out>('/api/v1/models/http-fastapi/scale', { replicas: 1 })).status, 200);
    });

    it(
      'runs in the bubblewrap sandbox too (isolation sandbox: its own loopback, nothing writable but scratch)',
      { skip: findBwrap() ? false : 'bubblewrap is not installed' },
      async () => {
        await editFixture(h, 'http-fastapi', (m) => {
          m.version = '1.0.1';
          m.isolation = 'sandbox';
        });
        h.gw.registry.register(join(h.modelsDir, 'http-fastapi'));
        await h.gw.registry.rollingUpdate('http-fastapi', '1.0.1');
        const r = await h.post<Out & { data: { version?: string } }>('/models/http-fastapi/predict', {
          sequence: 'GGCCAATT',
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.data.prediction, 0.5);
        const d = h.gw.registry.deployment('http-fastapi')!;
        assert.equal(d.pkg.manifest.isolation, 'sandbox');
      },
    );

    it('sends a batch as one list when the manifest says the server takes lists', async () => {
      await editFixture(h, 'http-fastapi', (m) => {
        m.version = '1.1.0';
        m.http = {
          ...(m.http as object),
          batch: 'list',
          predict_path: '/predict/batch',
          request: { sequences: '$inputs', task_type: '$task', options: '$options' },
          response: 'data.predictions',
        };
      });
      h.gw.registry.register(join(h.modelsDir, 'http-fastapi'));
      await h.gw.registry.rollingUpdate('http-fastapi', '1.1.0');
      const r = await h.post<Out>('/models/http-fastapi/predict/batch', { sequences: ['GGGG', 'ATAT', 'GCAT'] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const results = r.body.data.predictions ?? [];
      assert.deepEqual(
        results.map((x) => [x.sequence, x.prediction]),
        [
          ['GGGG', 1],
          ['ATAT', 0],
          ['GCAT', 0.5],
        ],
        'each item got its own entry of the list',
      );
    });
  },
);

describe('runtime http without cgroups', { skip: fastapiMissing() ?? false }, () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['http-fastapi'], { cgroups: false });
  });
  after(async () => h?.close());

  it('puts the memory limit on the server as an address-space rlimit (the adapter, node, has none)', async () => {
    const r = await h.post<{ data: { pid: number } }>('/models/http-fastapi/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const limits = readFileSync(`/proc/${r.body.data.pid}/limits`, 'utf8');
    const as = /^Max address space\s+(\S+)/m.exec(limits)![1];
    assert.equal(as, String(512 * 1024 * 1024), "the manifest's memory_mb");
  });
});
