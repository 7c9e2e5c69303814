// `isomodel pull` and POST /api/models/download through a real gateway: each source kind (a
// folder, a .tar.gz, an http(s) URL, the hub protocol against a mock hub on 127.0.0.1, since no
// hub is reachable here), weights for dnabert2 that then load, resume after a cut, digests that
// must match, and hostile archives and hub listings that must write nothing outside their folder.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { extractArchive, safeRelativePath } from '../src/pull/archive.js';
import { digest } from '../src/security/keys.js';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { startMockHub, type HubFileSpec, type MockHub } from './mock-hub.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
const PYTHON = '/usr/bin/python3';
const ADMIN = 'iso_test_admin_secret_pull_000001';
const PREDICT = 'iso_test_predict_secret_pull_00001';
const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const KEYS = {
  keys: [
    { name: 'ops', sha256: digest(ADMIN), scopes: ['admin' as const] },
    { name: 'lab', sha256: digest(PREDICT), scopes: ['predict' as const] },
  ],
};

type Entry = tar.Headers & { data?: Buffer | string };

/** A .tar.gz made entry by entry: any name, any type (what a hostile archive can say). */
async function tarGz(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const { data, ...h } of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ mode: 0o644, ...h }, data ?? (h.type === 'file' || !h.type ? '' : undefined), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** Every file of a folder as archive entries under `prefix`. */
function folderEntries(dir: string, prefix: string): Entry[] {
  const out: Entry[] = [{ name: `${prefix}/`, type: 'directory', mode: 0o755 }];
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const rel = `${prefix}/${relative(dir, p)}`;
      if (statSync(p).isDirectory()) {
        out.push({ name: `${rel}/`, type: 'directory', mode: 0o755 });
        walk(p);
      } else out.push({ name: rel, type: 'file', data: readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}

/** The revcomp package renamed: a small Node model that starts in well under a second. */
function revcompPackage(name: string): string {
  const dir = join(workerTmpDir('isomodel-src-'), name);
  cpSync(join(BUILTIN_MODELS_DIR, 'revcomp'), dir, { recursive: true });
  const yaml = readFileSync(join(dir, 'model.yaml'), 'utf8').replace(/^name: revcomp$/m, `name: ${name}`);
  writeFileSync(join(dir, 'model.yaml'), yaml);
  return dir;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

/** A plain HTTP server on 127.0.0.1 serving fixed bodies by path. */
async function fileServer(files: Record<string, Buffer>): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const body = files[req.url ?? ''];
    if (!body) return void res.writeHead(404).end('nope');
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The CLI in a child process, asynchronously: the mock hub answering it lives in this process. */
function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('safe extraction: hostile archives write nothing outside their folder', () => {
  let root: string;
  let outside: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'isomodel-extract-'));
    outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'sentinel'), 'untouched');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const limits = { maxBytes: 1024 * 1024, maxEntries: 100 };
  const hostile: [string, Entry[], RegExp][] = [
    ['absolute name', [{ name: '/tmp/isomodel-pwned', data: 'x' }], /absolute entry name/],
    ['.. segment', [{ name: 'pkg/../../outside/sentinel', data: 'pwned' }], /"\.\."/],
    ['bare ..', [{ name: '../outside/new', data: 'pwned' }], /"\.\."/],
    ['backslash', [{ name: '..\\..\\outside\\x', data: 'pwned' }], /backslash/],
    ['symlink to an absolute path', [{ name: 'link', type: 'symlink', linkname: '/etc' }], /points outside/],
    ['symlink up', [{ name: 'link', type: 'symlink', linkname: '../outside' }], /points up/],
    [
      'symlink then a file through it',
      [
        { name: 'a/link', type: 'symlink', linkname: '../..' },
        { name: 'a/link/outside/sentinel', data: 'pwned' },
      ],
      /points up/,
    ],
    [
      'self link then a climb through it',
      [
        { name: 'b', type: 'symlink', linkname: '.' },
        { name: 'a', type: 'symlink', linkname: 'b/..' },
      ],
      /points up/,
    ],
    ['hard link', [{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }], /hard link/],
    ['character device', [{ name: 'null', type: 'character-device' }], /character-device/],
    ['fifo', [{ name: 'pipe', type: 'fifo' }], /fifo/],
    [
      'a name twice',
      [
        { name: 'f', data: 'one' },
        { name: './f', data: 'two' },
      ],
      /appears twice/,
    ],
    ['over the size limit', [{ name: 'big', data: Buffer.alloc(limits.maxBytes + 1) }], /more than 1048576 bytes/],
    ['too many entries', Array.from({ length: 101 }, (_, i) => ({ name: `f${i}`, data: '' })), /more than 100 entries/],
  ];
  for (const [label, entries, why] of hostile) {
    it(`refuses ${label}`, async () => {
      const file = join(root, `${label.replace(/\W+/g, '-')}.tar.gz`);
      writeFileSync(file, await tarGz(entries));
      const dest = join(root, `dest-${label.replace(/\W+/g, '-')}`);
      mkdirSync(dest);
      await assert.rejects(extractArchive(file, dest, limits), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'UNSAFE_ARCHIVE', e.message);
        assert.match(e.message, why);
        return true;
      });
      assert.equal(readFileSync(join(outside, 'sentinel'), 'utf8'), 'untouched');
      assert.deepEqual(filesUnder(outside), ['sentinel']);
      assert.ok(!existsSync('/tmp/isomodel-pwned'));
    });
  }

  it('a gzip bomb stops at the size limit (64 MiB of zeros in a few KB, 1 MiB allowed), nothing written', async () => {
    const file = join(root, 'bomb.tar.gz');
    writeFileSync(file, await tarGz([{ name: 'zeros', data: Buffer.alloc(64 * 1024 * 1024) }]));
    assert.ok(statSync(file).size < 200_000, `${statSync(file).size} bytes compressed`);
    const dest = join(root, 'dest-bomb');
    mkdirSync(dest);
    await assert.rejects(extractArchive(file, dest, limits), /more than 1048576 bytes/);
    assert.deepEqual(filesUnder(dest), []);
  });

  it('keeps links that point down, and ordinary nested files', async () => {
    const file = join(root, 'good.tar.gz');
    writeFileSync(
      file,
      await tarGz([
        { name: 'pkg/', type: 'directory' },
        { name: 'pkg/data/v1/w.bin', data: 'weights' },
        { name: 'pkg/current', type: 'symlink', linkname: 'data/v1' },
        { name: 'pkg/run.sh', data: '#!/bin/sh\n', mode: 0o755 },
      ]),
    );
    const dest = join(root, 'dest-good');
    mkdirSync(dest);
    const s = await extractArchive(file, dest, limits);
    assert.deepEqual(s, { files: 2, bytes: 17 });
    assert.equal(readFileSync(join(dest, 'pkg/current/w.bin'), 'utf8'), 'weights');
    assert.equal(statSync(join(dest, 'pkg/run.sh')).mode & 0o777, 0o755);
    assert.equal(statSync(join(dest, 'pkg/data/v1/w.bin')).mode & 0o777, 0o644);
  });

  it('entry names: the folder itself is "", "./a//b" is "a/b"', () => {
    assert.equal(safeRelativePath('./'), '');
    assert.equal(safeRelativePath('./a//b/'), 'a/b');
    assert.throws(() => safeRelativePath('a/\0b'), /NUL/);
    assert.throws(() => safeRelativePath('C:/windows'), /absolute/);
  });
});

describe('POST /api/models/download and isomodel pull: packages', () => {
  let h: Harness;
  let files: { url: string; close: () => Promise<void> };
  let hub: MockHub;
  let srcRoot: string;

  before(async () => {
    srcRoot = workerTmpDir('isomodel-pull-src-');
    const viaUrl = revcompPackage('rc-url');
    const hostile = await tarGz([
      { name: 'rc-evil/model.yaml', data: 'name: x' },
      { name: '../../escaped', data: 'pwned' },
    ]);
    files = await fileServer({
      '/rc-url.tar.gz': await tarGz(folderEntries(viaUrl, 'rc-url')),
      '/evil.tar.gz': hostile,
    });
    const viaHub = revcompPackage('rc-hub');
    hub = await startMockHub([
      {
        repo: 'isomodel-test/rc-hub',
        files: readdirSync(viaHub).map((n) => ({ path: n, data: readFileSync(join(viaHub, n)) })),
      },
      {
        repo: 'evil/listing',
        files: [{ path: 'model.yaml', data: Buffer.from('name: evil') }],
        extraListed: ['../../../../tmp/isomodel-hub-pwned'],
      },
    ]);
    h = await startGateway([], { auth: KEYS, pull: { hf_endpoint: hub.url } });
  });
  after(async () => {
    await h.close();
    await files.close();
    await hub.close();
    rmSync(srcRoot, { recursive: true, force: true });
  });

  const download = (body: unknown, key = ADMIN) => h.post('/api/models/download', body, bearer(key));
  const predict = async (model: string): Promise<void> => {
    const r = await h.post(`/models/${model}/predict`, { sequence: 'AACG' }, bearer(PREDICT));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.reverse_complement, 'CGTT');
  };

  it('needs the admin scope', async () => {
    const r = await download({ model_id: 'rc-dir', source: revcompPackage('rc-dir') }, PREDICT);
    assert.equal(r.status, 403);
    assert.ok(!existsSync(join(h.modelsDir, 'rc-dir')));
  });

  it('a local folder: installed, loaded, serving', async () => {
    const r = await download({ model_id: 'rc-dir', model_type: 'sequence', source: revcompPackage('rc-dir') });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.data.kind, 'package');
    assert.equal(r.body.data.status, 'ready');
    assert.equal(r.body.data.path, join(h.modelsDir, 'rc-dir'));
    await predict('rc-dir');
    // Again: a conflict unless force.
    const again = await download({ model_id: 'rc-dir', source: revcompPackage('rc-dir') });
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'CONFLICT');
    const forced = await download({ model_id: 'rc-dir', source: revcompPackage('rc-dir'), force: true });
    assert.equal(forced.status, 201, JSON.stringify(forced.body));
    // No source for an installed model: seed 001's body as written is a no-op that says so.
    const seedBody = await download({ model_id: 'rc-dir', model_type: 'text-generation' });
    assert.equal(seedBody.status, 200);
    assert.equal(seedBody.body.data.downloaded, false);
  });

  it('a model_id that does not match the package is refused, nothing installed', async () => {
    const r = await download({ model_id: 'other-name', source: revcompPackage('rc-mismatch') });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.match(r.body.message, /is model "rc-mismatch", not "other-name"/);
    assert.ok(!existsSync(join(h.modelsDir, 'rc-mismatch')) && !existsSync(join(h.modelsDir, 'other-name')));
  });

  it('a .tar.gz file through the CLI, then picked up by the gateway', async () => {
    const tgz = join(srcRoot, 'rc-tgz.tar.gz');
    writeFileSync(tgz, await tarGz(folderEntries(revcompPackage('rc-tgz'), 'rc-tgz')));
    const out = await runCli(['--models-dir', h.modelsDir, '--state-dir', h.stateDir, 'pull', tgz, '--json']);
    assert.equal(out.status, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    assert.equal(result.model, 'rc-tgz');
    assert.equal(result.kind, 'package');
    const reload = await h.post('/v1/models/reload', {}, bearer(ADMIN));
    assert.deepEqual(reload.body.data.added, ['rc-tgz']);
    await predict('rc-tgz');
  });

  it('an http URL of a .tar.gz', async () => {
    const r = await download({ model_id: 'rc-url', source: `${files.url}/rc-url.tar.gz` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    await predict('rc-url');
    const missing = await download({ model_id: 'rc-url2', source: `${files.url}/missing.tar.gz` });
    assert.equal(missing.status, 502);
    assert.equal(missing.body.error.code, 'DOWNLOAD_FAILED');
    assert.match(missing.body.message, /answered 404/);
  });

  it('a hostile archive from a URL: 422 UNSAFE_ARCHIVE, the models dir unchanged', async () => {
    const before = filesUnder(h.modelsDir);
    const r = await download({ model_id: 'rc-evil', source: `${files.url}/evil.tar.gz` });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'UNSAFE_ARCHIVE');
    assert.deepEqual(filesUnder(h.modelsDir), before);
    assert.ok(!existsSync(join(h.modelsDir, '..', 'escaped')));
  });

  it('a hub repository holding a package (hf:org/repo)', async () => {
    const r = await download({ model_id: 'rc-hub', source: 'hf:isomodel-test/rc-hub' });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.data.commit, /^[0-9a-f]{40}$/);
    await predict('rc-hub');
    const unknown = await download({ model_id: 'rc-none', source: 'hf:isomodel-test/none@v2' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.message, /no model repository isomodel-test\/none at revision v2/);
  });

  it('a hub listing with a name that climbs out: 422, nothing written', async () => {
    const r = await download({ model_id: 'evil', source: 'hf:evil/listing' });
    assert.equal(r.status, 422, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'UNSAFE_ARCHIVE');
    assert.ok(!existsSync('/tmp/isomodel-hub-pwned'));
    assert.ok(!existsSync(join(h.modelsDir, 'evil')));
  });

  it('bad bodies and sources answer clear errors', async () => {
    for (const [body, code] of [
      [{}, 'INVALID_REQUEST'],
      [{ model_id: '../etc' }, 'INVALID_REQUEST'],
      [{ model_id: 'x', source: 'file:///etc' }, 'INVALID_REQUEST'],
      [{ model_id: 'x', source: 'hf:not a repo' }, 'INVALID_REQUEST'],
      [{ model_id: 'x', source: '/nonexistent/pkg' }, 'NOT_FOUND'],
      [{ model_id: 'x' }, 'INVALID_REQUEST'],
      [{ model_id: 'x', source: 'hf:a/b', extra: 1 }, 'INVALID_REQUEST'],
    ] as const) {
      const r = await download(body);
      assert.equal(r.body.error?.code, code, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`);
    }
  });
});

describe('weights from the hub: pull --for dnabert2, resumable, verified', () => {
  let hub: MockHub;
  let h: Harness;
  let ckpt: string;
  let hubFiles: HubFileSpec[];
  const TOKEN = 'hf_test_token_0123456789';
  const REPO = 'zhihan1996/DNABERT-2-117M';

  before(async () => {
    ckpt = workerTmpDir('isomodel-ckpt-');
    const r = spawnSync(
      PYTHON,
      [
        join(BUILTIN_MODELS_DIR, 'dnabert2', 'tools', 'make_tiny_checkpoint.py'),
        ckpt,
        '--format',
        'bin',
        '--seed',
        '3',
      ],
      { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } },
    );
    assert.equal(r.status, 0, `make_tiny_checkpoint.py (needs ${PYTHON} with torch): ${r.stderr}`);
    hubFiles = readdirSync(ckpt).map((n) => ({ path: n, data: readFileSync(join(ckpt, n)), lfs: n.endsWith('.bin') }));
    hubFiles.push({ path: 'README.md', data: Buffer.from('# tiny DNABERT-2\n') });
    hub = await startMockHub([{ repo: REPO, files: hubFiles }]);
    hub.requireToken(TOKEN);
    h = await startGateway(['dnabert2'], { auth: KEYS, pull: { hf_endpoint: hub.url, hf_token: TOKEN } });
  });
  after(async () => {
    await h.close();
    await hub.close();
    rmSync(ckpt, { recursive: true, force: true });
  });

  it('without weights the model is needs_weights, saying where they should be', async () => {
    assert.equal(h.gw.registry.status('dnabert2'), 'needs_weights');
    assert.match(h.gw.registry.lastError('dnabert2') ?? '', /DNABERT-2 weights not found/);
  });

  it('a cut download fails, a wrong digest fails, nothing is installed', async () => {
    const bin = hubFiles.find((f) => f.lfs)!;
    hub.cutOnce(bin.path, 1000);
    const cut = await h.post('/api/models/download', { model_id: 'dnabert2' }, bearer(ADMIN));
    assert.equal(cut.status, 502, JSON.stringify(cut.body));
    assert.equal(cut.body.error.code, 'DOWNLOAD_FAILED');
    assert.ok(!existsSync(join(h.gw.config.pull.weights_dir!, 'dnabert2')));

    // The config.json served with the same length but other bytes: its git blob id cannot match.
    const cfg = hubFiles.find((f) => f.path === 'config.json')!;
    hub.corrupt(
      'config.json',
      Buffer.from(cfg.data.toString('utf8').replace(/\d/, (d) => String((Number(d) + 1) % 10))),
    );
    const bad = await h.post('/api/models/download', { model_id: 'dnabert2' }, bearer(ADMIN));
    hub.corrupt('config.json', null);
    assert.equal(bad.status, 502, JSON.stringify(bad.body));
    assert.match(bad.body.message, /config\.json: git blob id [0-9a-f]{40} does not match/);
    assert.ok(!existsSync(join(h.gw.config.pull.weights_dir!, 'dnabert2')));
    assert.equal(h.gw.registry.status('dnabert2'), 'needs_weights');
  });

  it('the next pull resumes where the cut one stopped, verifies, and the model then loads and serves', async () => {
    hub.log.length = 0;
    const r = await h.post('/api/models/download', { model_id: 'dnabert2', model_type: 'embedding' }, bearer(ADMIN));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.data.kind, 'weights');
    assert.equal(r.body.data.env, 'DNABERT2_MODEL_PATH');
    assert.equal(r.body.data.status, 'ready', r.body.data.last_error);
    assert.ok(r.body.data.resumed_bytes > 0, `resumed ${r.body.data.resumed_bytes}`);
    const bin = hubFiles.find((f) => f.lfs)!;
    const ranged = hub.log.find((l) => l.server === 'cdn' && l.range);
    assert.ok(ranged, `no Range request: ${JSON.stringify(hub.log)}`);
    assert.match(ranged.range!, /^bytes=\d+-$/);
    // The token goes to the hub only, never to the CDN the LFS file is redirected to.
    assert.ok(hub.log.filter((l) => l.server === 'hub').every((l) => l.authorization === `Bearer ${TOKEN}`));
    assert.ok(
      hub.log.filter((l) => l.server === 'cdn').every((l) => l.authorization === undefined),
      JSON.stringify(hub.log),
    );
    // The file is the hub's, byte for byte.
    const got = readFileSync(join(r.body.data.path, bin.path));
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(bin.data).digest('hex'));

    const p = await h.post(
      '/models/dnabert2/predict',
      { sequence: 'ACGTTATAATGGGCGG', task_type: 'embedding' },
      bearer(PREDICT),
    );
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const hidden = JSON.parse(readFileSync(join(ckpt, 'config.json'), 'utf8')).hidden_size as number;
    assert.equal(p.body.data.dimension, hidden, JSON.stringify(p.body.data).slice(0, 300));
    assert.equal(p.body.data.embedding.length, hidden);
  });

  it('the CLI: isomodel pull hf:… --for dnabert2 with HF_ENDPOINT and HF_TOKEN, no progress bar off a terminal', async () => {
    const state = mkdtempSync(join(tmpdir(), 'isomodel-cli-state-'));
    try {
      const models = h.modelsDir;
      const out = await runCli(
        [
          '--models-dir',
          models,
          '--state-dir',
          state,
          'pull',
          `hf:${REPO}`,
          '--for',
          'dnabert2',
          '--include',
          '*.json',
          '*.bin',
        ],
        { HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN },
      );
      assert.equal(out.status, 0, out.stderr);
      const wanted = hubFiles
        .map((f) => f.path)
        .filter((n) => n.endsWith('.json') || n.endsWith('.bin'))
        .sort();
      assert.ok(
        wanted.includes('pytorch_model.bin') && wanted.includes('config.json') && !wanted.includes('README.md'),
      );
      assert.match(out.stdout, new RegExp(`pulled weights of dnabert2: ${wanted.length} files`));
      assert.match(out.stdout, /DNABERT2_MODEL_PATH=/);
      assert.doesNotMatch(out.stderr, /\r|\[#/);
      const dir = join(`${state}-work`, 'weights', 'dnabert2');
      assert.deepEqual(
        filesUnder(dir).filter((f) => !f.startsWith('.')),
        wanted,
      );
      // Without the token the gated repository says why.
      const denied = await runCli(
        ['--models-dir', models, '--state-dir', state, 'pull', `hf:${REPO}`, '--for', 'dnabert2'],
        { HF_ENDPOINT: hub.url },
      );
      assert.equal(denied.status, 1);
      assert.match(denied.stderr, /answered 401 \(a gated or private repository needs HF_TOKEN\)/);
      // A model that declares no weights.
      const none = await runCli(['--models-dir', models, '--state-dir', state, 'pull', ckpt, '--for', 'nosuch']);
      assert.equal(none.status, 1);
      assert.match(none.stderr, /no model nosuch/);
    } finally {
      rmSync(state, { recursive: true, force: true });
      rmSync(`${state}-work`, { recursive: true, force: true });
    }
  });
});
