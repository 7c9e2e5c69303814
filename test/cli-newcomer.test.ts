// What a newcomer gets from the CLI (issue 23): `predict` on a FASTA answers each record under its
// id and keeps the good ones when some are bad; `ls` shows invalid packages, why a model failed
// and what a model that needs weights wants; `doctor` checks torch, each weights path and the
// configured default model. With no gateway (the CLI starts the worker itself) and through one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BIN, cleanEnv } from './serve-process.js';
import { makeModelsDir, startGateway, workerTmpDir, type Harness } from './helpers.js';

const run = promisify(execFile);
const NO_GATEWAY = 'http://127.0.0.1:9';

/** A FASTA of three records, the middle one not a sequence revcomp takes. */
const FASTA = '>good1 first\nACGTAC\n>bad\nACGT!!JJ\n>good2\nGGGA\n';
/** An invalid package: a task list that is empty. */
const BROKEN_YAML = 'name: broken\nversion: 1.0.0\nruntime: python\nentry: model.py\ntasks: []\n';

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `isomodel args…`; a non-zero exit is an answer too (its output is what is checked). */
async function isomodel(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<Out> {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      env: cleanEnv({ ISOMODEL_URL: NO_GATEWAY, ...env }),
      cwd,
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

function checkRecords(out: Out): void {
  assert.equal(out.code, 1, 'a failed record makes the exit status 1');
  const rows = JSON.parse(out.stdout) as {
    id: string;
    reverse_complement?: string;
    error?: { code: string; message: string };
  }[];
  assert.deepEqual(
    rows.map((r) => r.id),
    ['good1', 'bad', 'good2'],
  );
  assert.equal(rows[0]!.reverse_complement, 'GTACGT');
  assert.equal(rows[2]!.reverse_complement, 'TCCC');
  assert.equal(rows[0]!.error, undefined);
  assert.equal(rows[1]!.error!.code, 'INVALID_SEQUENCE');
  assert.match(rows[1]!.error!.message, /!/);
  assert.match(out.stderr, /^record bad: INVALID_SEQUENCE: /m);
  assert.doesNotMatch(out.stderr, /record good/);
}

describe('isomodel CLI for a newcomer', { timeout: 180_000 }, () => {
  let root: string;
  let models: string;
  let fasta: string;
  let global: string[];

  before(() => {
    root = workerTmpDir('isomodel-cli-newcomer-');
    models = makeModelsDir(['revcomp', 'broken-py', 'weights-node', 'requires-py']);
    mkdirSync(join(models, 'broken'));
    writeFileSync(join(models, 'broken', 'model.yaml'), BROKEN_YAML);
    fasta = join(root, 'in.fasta');
    writeFileSync(fasta, FASTA);
    global = ['--models-dir', models, '--state-dir', join(root, 'state')];
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
    if (models) rmSync(models, { recursive: true, force: true });
  });

  it('predict without a gateway: every FASTA record under its id, the bad one with its error', async () => {
    checkRecords(await isomodel([...global, 'predict', 'revcomp', fasta], {}, root));
  });

  it('predict: a request-level error (no such task) is said once, not per record', async () => {
    const out = await isomodel([...global, 'predict', 'revcomp', fasta, '--task', 'nope'], {}, root);
    assert.equal(out.code, 1);
    assert.equal(out.stdout, '');
    assert.match(out.stderr, /INVALID_REQUEST|nope/);
    assert.doesNotMatch(out.stderr, /^record /m);
  });

  it('ls without a gateway: invalid packages with the field at fault, and what a model needing weights wants', async () => {
    const out = await isomodel([...global, 'ls'], {}, root);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^NAME\s+VERSION\s+RUNTIME\s+STATUS\s+TASKS\s+NOTE/);
    assert.match(out.stdout, /^broken\s+invalid\s+tasks: /m);
    assert.match(
      out.stdout,
      /^weights-node\s+1\.0\.0\s+node\s+not running\s+echo\s+needs weights: set WEIGHTS_NODE_PATH \(\/nonexistent\/weights-node is empty or missing\)$/m,
    );
    const rows = JSON.parse((await isomodel([...global, 'ls', '--json'], {}, root)).stdout) as {
      name: string;
      status: string;
      note?: string;
      path?: string;
    }[];
    const broken = rows.find((r) => r.name === 'broken')!;
    assert.equal(broken.status, 'invalid');
    assert.match(broken.path!, /broken\/model\.yaml$/);
    assert.equal(rows.find((r) => r.name === 'revcomp')!.note, undefined);
  });

  it('doctor checks torch, each weights path and the default model', async () => {
    const out = await isomodel([...global, 'doctor', '--json'], { ISOMODEL_DEFAULT_MODEL: 'no-such-model' }, root);
    const checks = JSON.parse(out.stdout) as { name: string; ok: boolean; required: boolean; detail: string }[];
    const torch = checks.filter((c) => c.name === 'torch');
    assert.equal(torch.length, 1, 'the system interpreter when no package names torch');
    assert.match(
      torch[0]!.detail,
      torch[0]!.ok ? /: torch \d/ : /cannot import torch.*apt-get install -y python3-torch/,
    );
    const w = checks.find((c) => c.name === 'weights weights-node')!;
    assert.equal(w.ok, false);
    assert.equal(w.required, false);
    assert.match(
      w.detail,
      /^WEIGHTS_NODE_PATH=\/nonexistent\/weights-node: missing or empty; the model stays needs_weights until then: set WEIGHTS_NODE_PATH/,
    );
    // Host software a manifest requires: what is missing and the apt line.
    assert.deepEqual(
      checks.find((c) => c.name === 'packages requires-py'),
      {
        name: 'packages requires-py',
        ok: false,
        required: false,
        detail:
          'the model stays needs_packages until then: apt-get install python3-isomodel-no-such-module (missing: python module isomodel_no_such_module), then POST /v1/models/requires-py/load',
      },
    );
    assert.equal(
      checks.find((c) => c.name === 'packages revcomp'),
      undefined,
      'only packages that declare requires',
    );
    const def = checks.find((c) => c.name === 'default')!;
    assert.equal(def.ok, false);
    assert.match(def.detail, /default_model "no-such-model" is not in /);
    const ok = JSON.parse(
      (await isomodel([...global, 'doctor', '--json'], { ISOMODEL_DEFAULT_MODEL: 'revcomp' }, root)).stdout,
    ) as { name: string; ok: boolean }[];
    assert.equal(ok.find((c) => c.name === 'default')!.ok, true);
    // The weights present: the check passes and names the path.
    const weights = join(root, 'w');
    mkdirSync(weights);
    writeFileSync(join(weights, 'weights.txt'), 'x\n');
    writeFileSync(
      join(root, 'isomodel.config.yaml'),
      `model_env:\n  weights-node:\n    WEIGHTS_NODE_PATH: ${weights}\n`,
    );
    const present = JSON.parse((await isomodel([...global, 'doctor', '--json'], {}, root)).stdout) as {
      name: string;
      ok: boolean;
      detail: string;
    }[];
    assert.deepEqual(
      present.find((c) => c.name === 'weights weights-node'),
      { name: 'weights weights-node', ok: true, required: false, detail: `WEIGHTS_NODE_PATH=${weights}` },
    );
    rmSync(join(root, 'isomodel.config.yaml'));
  });

  describe('through a running gateway', () => {
    let h: Harness;
    before(async () => {
      h = await startGateway(['revcomp', 'broken-py', 'weights-node']);
      mkdirSync(join(h.modelsDir, 'broken'));
      writeFileSync(join(h.modelsDir, 'broken', 'model.yaml'), BROKEN_YAML);
      assert.equal((await h.post('/v1/models/reload')).status, 200);
      assert.equal((await h.post('/v1/models/broken-py/load')).status, 503);
    });
    after(async () => h?.close());

    it('predict: the same per-record answers', async () => {
      checkRecords(await isomodel(['predict', 'revcomp', fasta, '--url', h.url]));
    });

    it('predict: a model that needs weights is said once, with what to set', async () => {
      const out = await isomodel(['predict', 'weights-node', fasta, '--url', h.url]);
      assert.equal(out.code, 1);
      assert.match(out.stderr, /MODEL_NOT_LOADED: model weights-node needs weights/);
      assert.doesNotMatch(out.stderr, /^record /m);
    });

    it('ls: why the failed model failed, what the other needs, and the invalid package', async () => {
      const out = await isomodel(['ls', '--url', h.url]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^revcomp\s+1\.0\.0\s+node\s+ready\s+reverse_complement\s*$/m);
      assert.match(out.stdout, /^broken-py\s+1\.0\.0\s+python\s+failed\s+nothing\s+\S/m);
      assert.match(
        out.stdout,
        /^weights-node\s+1\.0\.0\s+node\s+needs_weights\s+echo\s+needs weights: set WEIGHTS_NODE_PATH$/m,
      );
      assert.match(out.stdout, /^broken\s+invalid\s+tasks: /m);
      const rows = JSON.parse((await isomodel(['ls', '--url', h.url, '--json'])).stdout) as {
        name: string;
        note?: string;
      }[];
      const failed = (await h.get('/v1/models')).body.data.models.find((m: { name: string }) => m.name === 'broken-py');
      assert.equal(rows.find((r) => r.name === 'broken-py')!.note, failed.last_error);
      assert.ok(failed.last_error.length > 0);
    });
  });
});
