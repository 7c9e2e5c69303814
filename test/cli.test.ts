// The `isomodel` CLI as a user runs it: real child processes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort, request, waitFor } from './helpers.js';

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
const NO_GATEWAY = 'http://127.0.0.1:9';

describe('isomodel CLI', () => {
  let work: string;
  let global: string[];
  const cli = async (...args: string[]) =>
    run(process.execPath, [BIN, ...global, ...args], { cwd: work, env: { ...process.env, ISOMODEL_URL: NO_GATEWAY } });

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'isomodel-cli-'));
    chmodSync(work, 0o755); // models and the work dir are in here: workers (nobody, as root) must reach them
    global = ['--models-dir', join(work, 'models'), '--state-dir', join(work, 'state')];
  });

  it('init scaffolds working Python and Node packages', async () => {
    const py = await cli('init', 'my-py', '--runtime', 'python');
    assert.match(py.stdout, /created .*my-py/);
    await cli('init', 'my-node', '--runtime', 'node');
    for (const f of [
      'my-py/model.yaml',
      'my-py/model.py',
      'my-py/requirements.txt',
      'my-node/index.mjs',
      'my-node/package.json',
    ])
      assert.ok(existsSync(join(work, 'models', f)), f);
    await assert.rejects(cli('init', 'my-py'), /already exists/);
    await assert.rejects(cli('init', '../evil'), /invalid model name/);
  });

  it('ls lists packages from the models dir when no gateway runs', async () => {
    const { stdout } = await cli('ls');
    assert.match(stdout, /^NAME\s+VERSION\s+RUNTIME\s+STATUS\s+TASKS/);
    assert.match(stdout, /my-node\s+0\.1\.0\s+node\s+not running\s+sequence_length/);
    assert.match(stdout, /my-py\s+0\.1\.0\s+python/);
  });

  it('predict runs the scaffolded models without a gateway, on a sequence or a FASTA file', async () => {
    const one = JSON.parse((await cli('predict', 'my-py', 'ACGTA')).stdout);
    assert.deepEqual(one, [{ id: 'seq1', sequence: 'ACGTA', length: 5, counts: { A: 2, C: 1, G: 1, T: 1 } }]);
    const fasta = join(work, 'in.fasta');
    writeFileSync(fasta, '>a\nACGT\nAC\n>b\nGG\n');
    const many = JSON.parse((await cli('predict', 'my-node', fasta)).stdout);
    assert.deepEqual(
      many.map((r: any) => [r.id, r.length]),
      [
        ['a', 6],
        ['b', 2],
      ],
    );
    await assert.rejects(cli('predict', 'my-py', 'ACGTX'), /INVALID_SEQUENCE|not a valid/);
  });

  it('doctor checks the machine', async () => {
    const { stdout } = await cli('doctor', '--json');
    const checks = JSON.parse(stdout) as { name: string; ok: boolean }[];
    assert.equal(checks.find((c) => c.name === 'node')!.ok, true);
    assert.equal(checks.find((c) => c.name === 'python')!.ok, true);
    assert.ok(checks.some((c) => c.name === 'promtool'));
  });

  describe('serve', () => {
    let child: ReturnType<typeof spawn>;
    let url: string;
    before(async () => {
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      child = spawn(process.execPath, [BIN, ...global, 'serve', '--port', String(port), '--no-watch'], {
        cwd: work,
        stdio: 'ignore',
      });
      await waitFor(
        async () => (await request(`${url}/health/ready`, 'GET').catch(() => ({ status: 0 }))).status === 200,
        20_000,
        100,
      );
    });
    after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    it('serves the models, and ls / predict talk to it', async () => {
      const ls = await run(process.execPath, [BIN, 'ls', '--url', url, '--json']);
      const rows = JSON.parse(ls.stdout);
      assert.deepEqual(
        rows.map((r: any) => [r.name, r.status]),
        [
          ['my-node', 'ready'],
          ['my-py', 'ready'],
        ],
      );
      const p = await run(process.execPath, [BIN, 'predict', 'my-node', 'GATTACA', '--url', url]);
      assert.equal(JSON.parse(p.stdout)[0].length, 7);
    });

    it('stops cleanly on SIGTERM', async () => {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    });
  });
});
