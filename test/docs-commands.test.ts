// Every command the documentation shows runs as written (issue 23): each `isomodel …` and `curl …`
// line of the ```bash blocks in README.md and docs/*.md, from a folder laid out as the repository
// root (models/, examples/, isomodel.config.yaml), against a real gateway on 127.0.0.1 standing
// in for `npm start` (its port replaces 8000). A line that cannot run here is skipped only for a
// reason listed below, and the test fails if a block yields no command at all.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { BIN, cleanEnv } from './serve-process.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { docCommands, type DocCommand } from './doc-commands.js';

const run = promisify(execFile);

/** Lines that cannot run on a test machine, and why. Anything else runs. */
const SKIP: [RegExp, string][] = [
  [/^isomodel .*(?:<|\[|\||\.\.\.)/, 'a synopsis with placeholders, not a command'],
  [
    /^isomodel .*--(?:apply|delete)\b/,
    'needs a Kubernetes cluster (test/deploy-apply.test.ts drives a fake API server)',
  ],
  [/^isomodel .*\bmcp\b/, 'a stdio server that waits for an MCP client (test/mcp*.test.ts)'],
  [
    /^isomodel pull |\/api\/models\/download|\/logs\?/,
    'a package, an archive, a hub or an admin key the reader has (test/pull.test.ts pulls from each kind of source and a mock hub; test/replica-logs.test.ts reads the logs)',
  ],
  [/^isomodel --config prod\.yaml/, "the reader's own production config file"],
  [
    /\/models\/(?:my_model|streaming_model)\/|\bmodel": ?"(?:my_model|streaming_model)"/,
    "docs/seed-004.md's folder models, which the reader drops into models/ (test/seed-004.test.ts serves the same folders)",
  ],
  [
    /\/models\/my-[a-z-]+\/|\/tmp\/isomodel-demo\//,
    "docs/models.md's walk-through: its own gateway on the packages `isomodel init --type` writes, and files its shell lines write (test/init-types.test.ts sends each scaffold its request)",
  ],
];

/** The commands this test runs: the gateway's CLI and curl; other tools (kubectl, docker, npm) are not the docs' subject here. */
function runnable(c: DocCommand): boolean {
  return /^(?:isomodel|curl) /.test(c.command);
}

describe('every command in the docs runs as written', { timeout: 600_000 }, () => {
  let h: Harness;
  let root: string;
  const all: DocCommand[] = [];

  before(async () => {
    for (const f of [
      'README.md',
      ...readdirSync(join(PACKAGE_ROOT, 'docs'))
        .filter((n) => n.endsWith('.md'))
        .map((n) => `docs/${n}`),
    ]) {
      all.push(...docCommands(f, readFileSync(join(PACKAGE_ROOT, f), 'utf8')).filter(runnable));
    }
    // The repository root as a user has it, in a temp dir so outputs (out.jsonl, k8s/…) land there.
    root = workerTmpDir('isomodel-docs-');
    for (const n of ['models', 'examples']) symlinkSync(join(PACKAGE_ROOT, n), join(root, n));
    copyFileSync(join(PACKAGE_ROOT, 'isomodel.config.yaml'), join(root, 'isomodel.config.yaml'));
    // What `npm start` serves that the commands use; promoter answers the root routes, as in the checkout's config.
    h = await startGateway(
      [
        'promoter',
        'revcomp',
        'gc-scanner',
        'codon',
        'protein-props',
        'codon-verifier',
        'dna-lm',
        'langid',
        'textgen',
        'symptom-demo',
      ],
      { default_model: 'promoter' },
    );
  });
  after(async () => {
    await h?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** Runs one documented line in the stand-in repository root; `isomodel` is this checkout's bin. */
  async function runDoc(c: DocCommand): Promise<{ stdout: string; stderr: string }> {
    const port = new URL(h.url).port;
    const shell = c.command
      .replace(/\b(?:localhost|127\.0\.0\.1):8000\b/g, `127.0.0.1:${port}`)
      .replace(/^isomodel /, `"${process.execPath}" "${BIN}" `);
    const env = cleanEnv({ ISOMODEL_URL: h.url, ISOMODEL_STATE_DIR: join(root, 'state') });
    return run('bash', ['-c', shell], { cwd: root, env, maxBuffer: 32 << 20, timeout: 240_000 });
  }

  it('finds the documented commands (the jobs CLI and API, the README example, streaming)', () => {
    const files = new Set(all.map((c) => c.file));
    for (const f of ['README.md', 'docs/jobs.md', 'docs/openai-and-streaming.md', 'docs/kubernetes.md'])
      assert.ok(files.has(f), f);
    assert.ok(
      all.filter((c) => c.command.startsWith('isomodel batch') || c.command.startsWith('isomodel pipeline')).length >=
        6,
    );
  });

  it('runs each of them: exit status 0, no error envelope, the files it writes', async () => {
    const ran: string[] = [];
    for (const c of all) {
      const skip = SKIP.find(([re]) => re.test(c.command));
      if (skip) continue;
      const where = `${c.file}:${c.line}: ${c.command}`;
      let out: { stdout: string; stderr: string };
      try {
        out = await runDoc(c);
      } catch (e) {
        const x = e as { code?: number; stdout?: string; stderr?: string };
        assert.fail(`${where}\nexit ${x.code}\n${(x.stderr ?? '').slice(-2000)}\n${(x.stdout ?? '').slice(0, 2000)}`);
      }
      ran.push(c.command);
      if (c.command.startsWith('curl')) {
        assert.ok(out.stdout.length > 0, where);
        assert.doesNotMatch(out.stdout, /"success":\s*false/, `${where}\n${out.stdout.slice(0, 2000)}`);
      }
      // Every record of a batch or pipeline succeeded: the examples are valid inputs.
      if (/^isomodel (?:batch|pipeline run)/.test(c.command)) {
        assert.doesNotMatch(out.stdout, /"status":"error"/, `${where}\n${out.stdout.slice(0, 2000)}`);
        assert.match(
          out.stdout + out.stderr,
          /^Failed: +0$/m,
          `${where}\n${out.stderr.slice(-1500)}\n${out.stdout.slice(-1500)}`,
        );
      }
    }
    // The files the documented commands name as outputs are there.
    for (const f of [
      'out.jsonl',
      'out.csv',
      'design.jsonl',
      'out/exchange/task_001.json',
      'out/exchange/several.json',
      'out/exchange/cds.jsonl',
      'k8s/promoter.yaml',
    ])
      assert.ok(existsSync(join(root, f)), f);
    const design = readFileSync(join(root, 'design.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { status: string });
    assert.equal(design.length, 3);
    assert.ok(design.every((r) => r.status === 'success'));
    assert.ok(ran.length >= 15, `ran ${ran.length}: ${ran.join('\n')}`);
  });
});
