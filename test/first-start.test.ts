// A newcomer's first start (issue 23): `npm start` with the built-in models logs nothing at error
// level and no stack trace; models whose weights are absent are `needs_weights` (not failed, no
// alert, not retried) with what to set; on a terminal the log is readable and a table says what
// serves where; a configured default_model that is absent is said at start.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/config.js';
import { discoverPackages } from '../src/manifest/load.js';
import { weightsOf } from '../src/manifest/weights.js';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { wantsPretty } from '../src/cli/serve.js';
import { prettyLine } from '../src/util/pretty-log.js';
import { makeModelsDir, sleep, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { ServeProcess } from './serve-process.js';

/** A stack frame of JavaScript ("at fn (file:…:12:5)") or a Python traceback. */
const STACK = /Traceback \(most recent call last\)|\bat (?:async )?[\w$.<>]*\s*\(?(?:file:\/\/|\/)[^\s)]+:\d+:\d+\)?/;

/** The JSON log lines of an output (anything else is not a log line). */
function logLines(output: string): Record<string, any>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

/** Built-in models whose declared weights are absent on this machine (all of them on a fresh one). */
function modelsWithoutWeights(): string[] {
  const config = loadConfig({ cwd: PACKAGE_ROOT });
  return discoverPackages(BUILTIN_MODELS_DIR)
    .packages.filter((p) => {
      const w = weightsOf(p.manifest, config.model_env[p.manifest.name]);
      return w !== null && !w.present;
    })
    .map((p) => p.manifest.name);
}

describe('the first start with the built-in models (npm start)', { timeout: 400_000 }, () => {
  let serve: ServeProcess;
  let state: string;
  const absent = modelsWithoutWeights();

  before(async () => {
    state = workerTmpDir('isomodel-first-start-'); // workers (nobody, as root) reach the work dir beside the state dir
    // As the README says, from the repository root (its isomodel.config.yaml applies); only the
    // state dir is a temp dir, so the test leaves no .isomodel behind.
    serve = new ServeProcess({ global: ['--state-dir', join(state, 'state')] });
    await serve.start();
    await serve.settled();
    // The summary line comes once every start-up load has settled.
    await waitFor(() => serve.output.includes('isomodel started'), 60_000, 100);
  });

  after(async () => {
    await serve?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it('knows which built-in models lack weights here (the weight adapters on a fresh machine)', () => {
    for (const m of absent)
      assert.ok(['dnabert2', 'lucaone', 'dnabert2-onnx', 'lucaone-onnx', 'codon-transformer', 'evo2'].includes(m), m);
  });

  it('logs JSON lines off a terminal, nothing at error level, and no stack trace', () => {
    const lines = logLines(serve.output);
    assert.ok(lines.length > 5, serve.output.slice(0, 2000));
    const nonJson = serve.output.split('\n').filter((l) => l.trim() && !l.startsWith('{'));
    assert.deepEqual(nonJson, [], 'every line is JSON when stdout is not a terminal');
    const errors = lines.filter((l) => l.level >= 50);
    assert.deepEqual(errors, [], 'error-level lines on a clean first start');
    assert.doesNotMatch(serve.output, STACK);
  });

  it('ends with one summary line: every model and its state', () => {
    const summary = logLines(serve.output).find((l) => l.msg?.startsWith('isomodel started'))!;
    const states = Object.fromEntries(
      (summary.models as { model: string; state: string }[]).map((m) => [m.model, m.state]),
    );
    for (const m of absent) assert.equal(states[m], 'needs_weights', m);
    for (const m of ['promoter', 'splice', 'revcomp', 'dna-embed', 'gc-scanner', 'codon', 'protein-props'])
      assert.equal(states[m], 'ready', m);
  });

  it('shows needs_weights with what to set in /v1/models, /health/detailed and Prometheus', async () => {
    const list = (await serve.get('/v1/models')).body.data.models as any[];
    const detailed = (await serve.get('/health/detailed')).body.data;
    const prom = String((await serve.get('/metrics/prometheus')).body);
    for (const name of absent) {
      const m = list.find((x) => x.name === name);
      assert.equal(m.status, 'needs_weights', name);
      assert.equal(m.weights.present, false);
      assert.match(m.weights.hint, new RegExp(`model_env: \\{${name}: \\{${m.weights.env}: `));
      assert.equal(detailed.models.find((x: any) => x.name === name).status, 'needs_weights');
      assert.match(
        prom,
        new RegExp(`isomodel_model_state\\{model="${name}",version="[^"]+",state="needs_weights"\\} 1`),
      );
    }
    assert.match(prom, /isomodel_model_state\{model="promoter",version="[^"]+",state="ready"\} 1/);
    // Optional models do not make the gateway degraded.
    assert.equal(detailed.status, 'healthy', JSON.stringify(detailed.reasons));
  });

  it('fires no alert for them, and does not retry them', async () => {
    const before = logLines(serve.output).filter((l) => l.msg === 'worker exited').length;
    // A monitor pass (every 5 s by default) and requests to the models that need weights.
    const samples = (await serve.get('/v1/monitor/summary')).body.data.samples_taken as number;
    await waitFor(async () => (await serve.get('/v1/monitor/summary')).body.data.samples_taken > samples, 30_000, 200);
    for (const name of absent) {
      const r = await serve.post(`/models/${name}/predict`, { sequence: 'ACGTACGTAC' });
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.equal(r.body.error.details.status, 'needs_weights');
      assert.match(r.body.message, /needs weights/);
    }
    const alerts = (await serve.get('/v1/monitor/alerts?state=firing')).body.data;
    assert.equal(alerts.active, 0, JSON.stringify(alerts.alerts));
    await sleep(1000);
    // One worker start each at start-up, none since: requests are answered from the state.
    assert.equal(logLines(serve.output).filter((l) => l.msg === 'worker exited').length, before);
    for (const name of absent)
      assert.equal(logLines(serve.output).filter((l) => l.msg === 'worker exited' && l.model === name).length, 1, name);
  });

  it('answers the README example', async () => {
    const r = await serve.post('/predict', { sequence: 'TACTAGCAATACGCTTGCGTTCGGTGGTTAAGTATGTATAATGCGCGGGCTTGTCGT' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.model, 'promoter');
  });
});

describe('start-up output on a terminal', { timeout: 180_000 }, () => {
  let serve: ServeProcess;
  let root: string;

  before(async () => {
    root = workerTmpDir('isomodel-pretty-');
    const models = makeModelsDir(['revcomp', 'weights-node']);
    mkdirSync(join(models, 'broken'));
    writeFileSync(
      join(models, 'broken', 'model.yaml'),
      'name: broken\nversion: 1.0.0\nruntime: python\nentry: model.py\ntasks: []\n',
    );
    // log_format pretty is what `auto` picks on a terminal (unit-tested below); the test's stdout is a pipe.
    serve = new ServeProcess({
      global: ['--models-dir', models, '--state-dir', join(root, 'state')],
      cwd: root,
      env: { ISOMODEL_LOG_FORMAT: 'pretty', NO_COLOR: '1', ISOMODEL_DEFAULT_MODEL: 'no-such-model' },
    });
    await serve.start();
    await serve.settled();
    await waitFor(() => /^MODEL\s+RUNTIME\s+STATE\s+REPLICAS\s+URL/m.test(serve.output), 60_000, 100);
    await sleep(200);
  });

  after(async () => {
    await serve?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('prints readable lines, not JSON', () => {
    assert.match(serve.output, /^\d\d:\d\d:\d\d INFO {2}starting isomodel {2}cgroups=/m);
    assert.match(serve.output, /^\d\d:\d\d:\d\d INFO {2}\[revcomp\] model ready {2}version=1\.0\.0 ms=\d+/m);
    assert.doesNotMatch(serve.output, /^\{"level"/m);
    assert.doesNotMatch(serve.output, STACK);
  });

  it('ends with a table: model, runtime, state, replicas, URL; and what to do for each model that is not ready', () => {
    const table = serve.output.slice(serve.output.search(/^MODEL\s+RUNTIME/m));
    assert.match(
      table,
      new RegExp(`^revcomp\\s+node\\s+ready\\s+1/1\\s+${serve.url}/models/revcomp {2}\\(and ${serve.url}/\\)$`, 'm'),
    );
    assert.match(
      table,
      new RegExp(`^weights-node\\s+node\\s+needs_weights\\s+0/0\\s+${serve.url}/models/weights-node$`, 'm'),
    );
    assert.match(
      table,
      /^ {2}weights-node \(needs_weights\): set WEIGHTS_NODE_PATH to the weights folder \(model_env: \{weights-node: \{WEIGHTS_NODE_PATH: \/path\/to\/weights\}\} in isomodel\.config\.yaml\) or put them in \/nonexistent\/weights-node, then POST \/v1\/models\/weights-node\/load; weights: a folder with weights\.txt$/m,
    );
    assert.match(table, /^ {2}invalid package .*broken\/model\.yaml: tasks: /m);
  });

  it('says at start that the configured default_model is absent, and which model answers instead', async () => {
    assert.match(
      serve.output,
      /WARN {2}default_model "no-such-model" is not among the models in .*: the root routes \(\/predict, \/health, \/model\/info\) answer for revcomp instead/,
    );
    assert.match(
      serve.output,
      /^ {2}default_model "no-such-model" is not a model here: .*\/predict answers for revcomp$/m,
    );
    const d = (await serve.get('/health/detailed')).body.data;
    assert.equal(d.default_model, 'revcomp');
    assert.match(d.default_model_missing, /no-such-model/);
  });
});

describe('log format', () => {
  it('is readable on a terminal and JSON elsewhere unless the config says', () => {
    const cfg = (log_format: 'auto' | 'json' | 'pretty') =>
      loadConfig({ env: {}, cwd: tmpdir(), overrides: { log_format } });
    assert.equal(wantsPretty(cfg('auto'), true), true);
    assert.equal(wantsPretty(cfg('auto'), false), false);
    assert.equal(wantsPretty(cfg('json'), true), false);
    assert.equal(wantsPretty(cfg('pretty'), false), true);
    assert.equal(loadConfig({ env: { ISOMODEL_LOG_FORMAT: 'json' }, cwd: tmpdir() }).log_format, 'json');
  });

  it('prints a pino line as time, level, origin, message and fields', () => {
    const t = new Date(2026, 0, 2, 3, 4, 5).getTime();
    const line = JSON.stringify({
      level: 40,
      time: t,
      pid: 1,
      hostname: 'h',
      model: 'm',
      replica: 'r1',
      worker_log: 'low memory',
      extra: { a: 1 },
    });
    assert.equal(prettyLine(line, { color: false }), '03:04:05 WARN  [m r1] low memory  extra={"a":1}\n');
    assert.equal(
      prettyLine(JSON.stringify({ level: 30, time: t, component: 'http', msg: 'listening' }), { color: false }),
      '03:04:05 INFO  [http] listening\n',
    );
    assert.ok(
      prettyLine(JSON.stringify({ level: 50, time: t, msg: 'x' }), { color: true }).includes(
        '\u001b[31mERROR\u001b[0m',
      ),
    );
    assert.equal(prettyLine('not json', { color: false }), 'not json\n');
    const long = prettyLine(JSON.stringify({ level: 30, time: t, msg: 'm', v: 'x'.repeat(1000) }), { color: false });
    assert.ok(long.length < 400, 'long values are clipped');
  });
});

describe('a model whose weights are absent', { timeout: 120_000 }, () => {
  let h: Harness;
  let weights: string;

  before(async () => {
    weights = join(workerTmpDir('isomodel-weights-'), 'w');
    h = await startGateway(['weights-node', 'revcomp'], {
      model_env: { 'weights-node': { WEIGHTS_NODE_PATH: weights } },
      monitor: { interval_ms: 100 },
    });
  });
  after(async () => h?.close());

  it('is needs_weights with the path and the variable, not failed', async () => {
    const m = (await h.get('/v1/models')).body.data.models.find((x: any) => x.name === 'weights-node');
    assert.equal(m.status, 'needs_weights');
    assert.equal(m.last_error, `weights not found: put weights.txt in ${weights} (set WEIGHTS_NODE_PATH)`);
    assert.deepEqual(
      { ...m.weights, hint: undefined },
      { env: 'WEIGHTS_NODE_PATH', path: weights, present: false, source: 'a folder with weights.txt', hint: undefined },
    );
    const r = await h.post('/models/weights-node/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.equal(r.body.error.details.weights.env, 'WEIGHTS_NODE_PATH');
    assert.match(r.body.message, new RegExp(`needs weights: weights not found: put weights.txt in ${weights}`));
  });

  it('fires no alert and shows in the monitor with its hint (what the console greys out)', async () => {
    const samples = h.gw.monitor.summary().samples_taken as number;
    await waitFor(() => (h.gw.monitor.summary().samples_taken as number) > samples + 1, 10_000, 20);
    assert.equal(h.gw.monitor.alerts.counts().firing, 0);
    const m = (await h.get('/v1/monitor/metrics/weights-node')).body.data;
    assert.equal(m.status, 'needs_weights');
    assert.match(m.weights.hint, /^set WEIGHTS_NODE_PATH to the weights folder/);
  });

  it('a job on it fails at once instead of waiting for weights that will not come by themselves', async () => {
    const t0 = Date.now();
    const sub = await h.post('/v1/jobs', { model: 'weights-node', sequences: ['ACGT'] });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const job = await waitFor(
      async () => {
        const j = (await h.get(`/v1/jobs/${sub.body.data.id}`)).body.data;
        return j.status === 'failed' ? j : null;
      },
      20_000,
      50,
    );
    assert.match(job.error, /^MODEL_NOT_LOADED: model weights-node needs weights/);
    assert.ok(Date.now() - t0 < 20_000);
  });

  it('loads once the weights are there', async () => {
    mkdirSync(weights, { recursive: true, mode: 0o755 });
    writeFileSync(join(weights, 'weights.txt'), 'hello\n', { mode: 0o644 });
    const load = await h.post('/v1/models/weights-node/load');
    assert.equal(load.status, 200, JSON.stringify(load.body));
    assert.equal(load.body.data.status, 'ready');
    assert.equal(load.body.data.weights.present, true);
    const r = await h.post('/models/weights-node/predict', { sequence: 'ACGT' });
    assert.equal(r.body.data.word, 'hello');
  });
});

describe('a model that fails for another reason stays failed', { timeout: 60_000 }, () => {
  it('broken-py (no weights declared) is failed, with its reason', async () => {
    const h = await startGateway(['broken-py']);
    try {
      const load = await h.post('/v1/models/broken-py/load');
      assert.equal(load.status, 503);
      assert.equal((await h.get('/v1/models')).body.data.models[0].status, 'failed');
      assert.equal((await h.get('/v1/models')).body.data.models[0].weights, null);
    } finally {
      await h.close();
    }
  });
});

describe('a refusal read after the worker has exited', { timeout: 60_000 }, () => {
  it('is the reason given, not "crashed … no output" (the exit may come before the last line is read)', async () => {
    const h = await startGateway(['late-fatal-node']);
    try {
      const load = await h.post('/v1/models/late-fatal-node/load');
      assert.equal(load.status, 503);
      const m = (await h.get('/v1/models')).body.data.models[0];
      assert.equal(m.last_error, 'late refusal: weights not found');
    } finally {
      await h.close();
    }
  });
});
