// The seeds' examples (issue 23): every curl example of ../shared/spec seed 000 (its API and agent
// sections) and seed 004, and every HTTP request of seed 002's API section, run against `isomodel
// serve` started as `npm start` starts it (repository root, its config). Each one either works or
// fails with the reason docs/seed-examples.md gives; an example the table does not know fails the test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { docCommands } from './doc-commands.js';
import { request, workerTmpDir } from './helpers.js';
import { ServeProcess } from './serve-process.js';

const run = promisify(execFile);
const SPEC_DIR = [process.env.ISOMODEL_SEED_SPEC_DIR, join(PACKAGE_ROOT, '..', 'shared', 'spec')].find(
  (d): d is string => !!d && existsSync(d),
);

interface Example {
  seed: string;
  /** "curl …" as written, or "METHOD /path" with its JSON body. */
  text: string;
  method: string;
  /** As written, host and port included for curl. */
  url: string;
  body?: unknown;
}

/** What docs/seed-examples.md says of an example: how it runs on isomodel and what it answers. */
interface Expectation {
  match: RegExp;
  /** The path run on the gateway when it is not the written one (another service's port), with {model_id} filled in. */
  path?: string;
  status: number;
  code?: string;
  /** Not run, and why (a service npm start does not run). */
  notRun?: string;
  check?: (body: any) => void;
}

const EXPECT: Expectation[] = [
  // seed 000, DNABERT-2 service on :8000: the gateway's root routes answer for promoter (isomodel.config.yaml).
  {
    match: /^curl http:\/\/localhost:8000\/health$/,
    status: 200,
    check: (b) => assert.equal(b.data.model, 'promoter'),
  },
  {
    match: /^curl -X POST http:\/\/localhost:8000\/predict .*ATGCGTACGTAGCTAGCTAGCTAGC/,
    status: 400,
    code: 'INVALID_SEQUENCE',
    check: (b) => assert.equal(b.error.details.min_length, 57),
  },
  // seed 000, LucaOne service on :8002: one gateway, one port; LucaOne is /models/lucaone/….
  {
    match: /^curl http:\/\/localhost:8002\/health$/,
    path: '/models/lucaone/health',
    status: 200,
    check: (b) => assert.equal(b.data.state, 'needs_weights'),
  },
  {
    match: /^curl -X POST http:\/\/localhost:8002\/predict .*"task_type": "embedding"/,
    path: '/models/lucaone/predict',
    status: 503,
    code: 'MODEL_NOT_LOADED',
    check: (b) => assert.equal(b.error.details.status, 'needs_weights'),
  },
  // seed 000, Agent API on :5000: the gateway's /agent prefix.
  {
    match: /^curl http:\/\/localhost:5000\/health$/,
    path: '/agent/health',
    status: 200,
    check: (b) => assert.equal(b.status, 'healthy'),
  },
  {
    match: /^curl http:\/\/localhost:9090\//,
    status: 0,
    notRun: 'Prometheus of deploy/docker/compose.yaml (docker compose up), not started by npm start',
  },
  {
    match: /^curl http:\/\/localhost:3000\//,
    status: 0,
    notRun: 'Grafana of deploy/docker/compose.yaml (docker compose up), not started by npm start',
  },
  // seed 004: model management.
  {
    match: /^curl http:\/\/localhost:8000\/v1\/models$/,
    status: 200,
    check: (b) => assert.ok(b.data.models.length >= 11),
  },
  { match: /^curl -X POST http:\/\/localhost:8000\/v1\/models\/reload$/, status: 200 },
  // seed 002: the deployment API ({model_id} = a built-in model).
  // docker_image with no path: an http-runtime package is written and started on the docker engine,
  // which npm start's machine need not have, and which never pulls the seed's image.
  {
    match: /^POST \/api\/v1\/models\/deploy$/,
    status: 503,
    code: 'MODEL_NOT_LOADED',
    check: (b) => assert.match(b.message, /docker/),
  },
  {
    match: /^POST \/api\/v1\/models\/\{model_id\}\/inference$/,
    path: '/api/v1/models/revcomp/inference',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    match: /^POST \/api\/v1\/models\/\{model_id\}\/batch_inference$/,
    path: '/api/v1/models/revcomp/batch_inference',
    status: 400,
    code: 'INVALID_REQUEST',
  },
  {
    match: /^GET \/api\/v1\/models\/\{model_id\}\/status$/,
    path: '/api/v1/models/revcomp/status',
    status: 200,
    check: (b) => assert.equal(b.data.status, 'ready'),
  },
  { match: /^GET \/api\/v1\/models$/, status: 200 },
  {
    match: /^POST \/api\/v1\/models\/\{model_id\}\/scale$/,
    path: '/api/v1/models/revcomp/scale',
    status: 200,
    check: (b) => assert.equal(b.data.versions[0].replicas.length, 3),
  },
  {
    match: /^PUT \/api\/v1\/models\/\{model_id\}$/,
    path: '/api/v1/models/revcomp',
    status: 422,
    code: 'VALIDATION_ERROR',
  },
  { match: /^DELETE \/api\/v1\/models\/\{model_id\}$/, path: '/api/v1/models/dnabert2', status: 200 },
  { match: /^GET \/api\/v1\/health\/(?:live|ready|startup|detailed)?$/, status: 200 },
];

/** Seed 000's and 004's curl examples that call a service (not the installation's downloads). */
function curlExamples(seed: string, text: string): Example[] {
  return docCommands(seed, text)
    .map((c) => c.command)
    .filter((c) => /^curl .*http:\/\/localhost:\d+/.test(c))
    .map((c) => {
      const url = /http:\/\/localhost:\d+\S*/.exec(c)![0].replace(/['"]$/, '');
      const data = /-d '([^']*)'/.exec(c);
      return {
        seed,
        text: c,
        method: /-X (\w+)/.exec(c)?.[1] ?? 'GET',
        url,
        body: data ? JSON.parse(data[1]!) : undefined,
      };
    });
}

/** Seed 002's request blocks: "METHOD /path", headers, a blank line, a JSON body. */
function requestExamples(seed: string, text: string): Example[] {
  const out: Example[] = [];
  const fence = /^```bash\n([\s\S]*?)^```/gm;
  for (let m = fence.exec(text); m; m = fence.exec(text)) {
    const head = /^(GET|POST|PUT|DELETE) (\/\S+)\s*$/m.exec(m[1]!);
    if (!head || head.index !== 0) continue;
    const blank = m[1]!.indexOf('\n\n');
    const body = blank >= 0 ? JSON.parse(m[1]!.slice(blank + 2)) : undefined;
    out.push({ seed, text: `${head[1]} ${head[2]}`, method: head[1]!, url: head[2]!, body });
  }
  return out;
}

function seedFile(prefix: string): string {
  const f = readdirSync(SPEC_DIR!).find((n) => n.startsWith(prefix) && n.endsWith('.txt'));
  assert.ok(f, `seed ${prefix} in ${SPEC_DIR}`);
  return readFileSync(join(SPEC_DIR!, f), 'utf8');
}

describe(
  "the seeds' examples against npm start",
  { timeout: 600_000, skip: SPEC_DIR ? false : 'no ../shared/spec next to the repository (or ISOMODEL_SEED_SPEC_DIR)' },
  () => {
    let serve: ServeProcess;
    let state: string;
    let examples: Example[] = [];

    before(async () => {
      examples = [
        ...curlExamples('000', seedFile('000_')),
        ...requestExamples('002', seedFile('002_')),
        ...curlExamples('004', seedFile('004_')),
      ];
      state = workerTmpDir('isomodel-seeds-');
      serve = new ServeProcess({ global: ['--state-dir', join(state, 'state')] });
      await serve.start();
      await serve.settled();
    });
    after(async () => {
      await serve?.stop();
      if (state) rmSync(state, { recursive: true, force: true });
    });

    it("finds them all: seed 000's API and agent curls, seed 002's requests, seed 004's curls", () => {
      const count = (seed: string) => examples.filter((e) => e.seed === seed).length;
      assert.equal(count('000'), 10, examples.map((e) => e.text).join('\n'));
      assert.equal(count('002'), 13);
      assert.equal(count('004'), 2);
    });

    it('each works, or fails with the documented reason', async () => {
      const port = new URL(serve.url).port;
      for (const e of examples) {
        const x = EXPECT.find((p) => p.match.test(e.text));
        assert.ok(x, `seed ${e.seed}: no entry in docs/seed-examples.md for: ${e.text}`);
        if (x.notRun) continue;
        const where = `seed ${e.seed}: ${e.text}`;
        let status: number;
        let body: any;
        if (e.text.startsWith('curl')) {
          // The curl line itself, its service's address replaced by the gateway's.
          const target = `http://127.0.0.1:${port}${x.path ?? new URL(e.url).pathname}`;
          const shell = `${e.text.replace(e.url, target)} -s -w '\\n%{http_code}'`;
          const { stdout } = await run('bash', ['-c', shell], { maxBuffer: 8 << 20 });
          const cut = stdout.lastIndexOf('\n');
          status = Number(stdout.slice(cut + 1));
          body = JSON.parse(stdout.slice(0, cut));
        } else {
          const r = await request<any>(`${serve.url}${x.path ?? e.url}`, e.method, e.body);
          ({ status, body } = r);
        }
        assert.equal(status, x.status, `${where}\n${JSON.stringify(body).slice(0, 800)}`);
        if (x.code) assert.equal(body.error.code, x.code, where);
        else if (typeof body.success === 'boolean') assert.equal(body.success, true, where);
        x.check?.(body);
      }
    });
  },
);
