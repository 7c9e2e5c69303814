// State faults answer clearly (src/store/storage-fault.ts, src/store/db.ts): with the state dir's
// file system full, writes answer 507 STORAGE_UNAVAILABLE naming the state dir (they answered
// 500 INTERNAL_ERROR), /health/detailed is degraded with the reason while it lasts and recovers
// after, and predictions keep working. A corrupt or unreadable database at start names the file
// and the way out, through `isomodel serve` too, and is left as it is.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { toIsoError } from '../src/api/envelope.js';
import { loadConfig } from '../src/config/config.js';
import { Gateway } from '../src/gateway.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { StateStore, StateStoreError } from '../src/store/db.js';
import { storageFaultCode } from '../src/store/storage-fault.js';
import { makeModelsDir, request, waitFor, type Res } from './helpers.js';

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('storage faults: which errors they are', () => {
  it('tells storage faults from other errors', () => {
    for (const code of [
      'SQLITE_FULL',
      'SQLITE_IOERR',
      'SQLITE_IOERR_WRITE',
      'SQLITE_IOERR_FSYNC',
      'SQLITE_READONLY',
      'SQLITE_READONLY_DBMOVED',
      'SQLITE_CORRUPT',
      'SQLITE_NOTADB',
      'SQLITE_CANTOPEN',
      'ENOSPC',
      'EDQUOT',
      'EROFS',
      'EIO',
    ]) {
      assert.equal(storageFaultCode({ code }), code);
    }
    for (const code of [
      'SQLITE_CONSTRAINT_UNIQUE',
      'SQLITE_BUSY',
      'SQLITE_ERROR',
      'SQLITE_FULLNESS',
      'ENOENT',
      'EACCES',
      undefined,
      42,
    ]) {
      assert.equal(storageFaultCode({ code }), null, String(code));
    }
    assert.equal(storageFaultCode(null), null);
  });

  it("maps SQLite's own SQLITE_FULL (max_page_count) to 507 STORAGE_UNAVAILABLE naming the state dir, degrades and recovers", () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-full-'));
    const store = new StateStore(dir);
    try {
      store.db.exec('CREATE TABLE filler (b BLOB)');
      const pages = store.db.pragma('page_count', { simple: true }) as number;
      store.db.pragma(`max_page_count = ${pages}`);
      let thrown: unknown;
      try {
        for (let i = 0; i < 100; i++) store.db.prepare('INSERT INTO filler VALUES (zeroblob(4096))').run();
      } catch (e) {
        thrown = e;
      }
      assert.equal((thrown as { code?: string }).code, 'SQLITE_FULL');
      const err = toIsoError(thrown);
      assert.equal(err.code, 'STORAGE_UNAVAILABLE');
      assert.equal(err.status, 507);
      assert.match(err.message, new RegExp(`the file system holding the state dir ${dir} is full \\(SQLITE_FULL\\)`));
      assert.deepEqual(err.details, { storage_code: 'SQLITE_FULL', state_dir: dir });
      // The probe allocates a page too (and rolls back): still unavailable, with the reason.
      const down = store.storage.check(Date.now() + 10_000);
      assert.equal(down.status, 'unavailable');
      assert.equal(down.code, 'SQLITE_FULL');
      assert.match(down.reason!, /is full/);
      // A write that must not fail its request is swallowed (noted); other errors still throw.
      assert.equal(
        store.bestEffort(() => store.db.prepare('INSERT INTO filler VALUES (zeroblob(65536))').run()),
        undefined,
      );
      assert.throws(
        () => store.bestEffort(() => store.db.prepare('INSERT INTO no_such_table VALUES (1)').run()),
        /no such table/,
      );
      store.db.pragma('max_page_count = 1000000');
      assert.deepEqual(store.storage.check(Date.now() + 20_000), { status: 'ok', state_dir: dir });
      store.db.prepare('INSERT INTO filler VALUES (zeroblob(4096))').run();
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A real full file system: a small tmpfs as the state dir (the tests run as root).

function mountTmpfs(dir: string, size: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (e) {
    return `cannot mount a tmpfs (${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}); the disk-full case is covered above with max_page_count only`;
  }
}

/** Writes zeros into `file` until the file system refuses even one byte. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1]) {
      const buf = Buffer.alloc(size);
      for (;;) {
        try {
          written += writeSync(fd, buf);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/** A gateway serving revcomp with its state dir on a fresh 24 MB tmpfs (null: why it cannot be mounted). */
function tmpfsGateway() {
  const mountPoint = mkdtempSync(join(tmpdir(), 'isomodel-tmpfs-'));
  const skip = mountTmpfs(mountPoint, '24m');
  const stateDir = join(mountPoint, 'state');
  const t = {
    skip,
    mountPoint,
    stateDir,
    gw: null as unknown as Gateway,
    url: '',
    modelsDir: '',
    headers: {} as Record<string, string>,
    get: <T = any>(path: string): Promise<Res<T>> => request<T>(t.url + path, 'GET', undefined, t.headers),
    send: <T = any>(method: string, path: string, body?: unknown): Promise<Res<T>> =>
      request<T>(t.url + path, method, body ?? {}, t.headers),
    async start(): Promise<void> {
      if (skip) return;
      t.modelsDir = makeModelsDir(['revcomp']);
      mkdirSync(stateDir);
      const config = loadConfig({
        cwd: stateDir,
        env: {},
        overrides: {
          host: '127.0.0.1',
          port: 0,
          models_dir: t.modelsDir,
          state_dir: stateDir,
          watch: false,
          rate_limit: { max: 0 },
        },
      });
      t.gw = new Gateway(config, pino({ level: process.env.ISOMODEL_TEST_LOG ?? 'silent' }));
      await t.gw.start();
      t.url = `http://127.0.0.1:${t.gw.address().port}`;
    },
    /** Leaves the WAL nothing preallocated (the next database write must grow a file), then fills the file system. */
    fill(): string {
      t.gw.store.flush();
      t.gw.store.db.pragma('wal_checkpoint(TRUNCATE)');
      const filler = join(mountPoint, 'filler');
      assert.ok(fill(filler) > 0);
      return filler;
    },
    async stop(): Promise<void> {
      if (!skip) {
        await t.gw?.close();
        execFileSync('umount', [mountPoint]);
        rmSync(t.modelsDir, { recursive: true, force: true });
      }
      rmSync(mountPoint, { recursive: true, force: true });
    },
  };
  return t;
}

describe('storage faults: the state dir on a full file system', () => {
  const t = tmpfsGateway();
  const { stateDir } = t;
  const get = t.get;
  const send = t.send;
  before(() => t.start());
  after(() => t.stop());

  it(
    'answers 507 STORAGE_UNAVAILABLE naming the state dir, keeps predicting, degrades health, and recovers',
    { skip: t.skip ?? false },
    async () => {
      assert.equal((await send('POST', '/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
      assert.equal((await get('/health/detailed')).body.data.storage.status, 'ok');
      const filler = t.fill();

      // Health says so, with the reason (the probe writes, so it knows before any request fails).
      const health = (await waitFor(
        async () => {
          const d = await get('/health/detailed');
          return d.body.data.status === 'degraded' ? d : null;
        },
        15_000,
        200,
      ))!;
      assert.equal(health.status, 200);
      assert.equal(health.body.data.storage.status, 'unavailable');
      assert.equal(health.body.data.storage.state_dir, stateDir);
      assert.match(
        health.body.data.storage.reason,
        new RegExp(`the file system holding the state dir ${stateDir} is full`),
      );
      assert.ok(
        health.body.data.reasons.some((r: string) => r.startsWith('storage unavailable: ')),
        JSON.stringify(health.body.data.reasons),
      );
      assert.match(health.body.message, /degraded/);
      assert.equal((await get('/api/v1/health')).body.data.status, 'degraded');
      // Readiness is about serving predictions, which still work.
      assert.equal((await get('/health/ready')).status, 200);

      // Predictions keep working (their request-log rows are lost and reported, never failing them).
      for (let i = 0; i < 5; i++) {
        const p = await send('POST', '/models/revcomp/predict', { sequence: 'ACGTTT' });
        assert.equal(p.status, 200, JSON.stringify(p.body));
        assert.equal(p.body.data.reverse_complement, 'AAACGT');
      }

      // Writes answer 507 with a code and the state dir, not 500 INTERNAL_ERROR.
      const expect507 = (r: Res<any>, what: string): void => {
        assert.equal(r.status, 507, `${what}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'STORAGE_UNAVAILABLE', what);
        assert.ok(r.body.message.includes(stateDir), `${what}: ${r.body.message}`);
        assert.match(r.body.message, /is full/);
      };
      expect507(await send('PUT', '/v1/monitor/thresholds', { cpu_percent: 91 }), 'monitor thresholds');
      expect507(await send('POST', '/v1/jobs', { model: 'revcomp', sequences: ['ACGT', 'GGCC'] }), 'job submit');
      expect507(await send('POST', '/v1/models/revcomp/unload'), 'unload');
      expect507(await send('POST', '/v1/models/revcomp/load'), 'load');

      // Space comes back: health recovers by itself, and the same actions succeed.
      unlinkSync(filler);
      const back = (await waitFor(
        async () => {
          const d = await get('/health/detailed');
          return d.body.data.storage.status === 'ok' ? d : null;
        },
        15_000,
        200,
      ))!;
      assert.equal(back.body.data.status, 'healthy', JSON.stringify(back.body.data.reasons));
      assert.deepEqual(back.body.data.reasons, []);
      assert.equal((await send('POST', '/v1/models/revcomp/load')).status, 200);
      assert.equal((await send('PUT', '/v1/monitor/thresholds', { cpu_percent: 91 })).status, 200);
      const job = await send('POST', '/v1/jobs', { model: 'revcomp', sequences: ['ACGT', 'GGCC'] });
      assert.ok(job.status === 200 || job.status === 201 || job.status === 202, JSON.stringify(job.body));
      assert.equal((await send('POST', '/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
    },
  );
});

describe('storage faults: with an API key', () => {
  const t = tmpfsGateway();
  before(async () => {
    await t.start();
    if (!t.skip) t.headers = { authorization: `Bearer ${t.gw.keys.create('ops', ['predict', 'admin']).key}` };
  });
  after(() => t.stop());

  it('predictions with an API key keep working on a full disk', { skip: t.skip ?? false }, async () => {
    assert.equal((await t.send('POST', '/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
    const filler = t.fill();
    try {
      const p = await t.send('POST', '/models/revcomp/predict', { sequence: 'ACGTTT' });
      assert.equal(p.status, 200, JSON.stringify(p.body));
    } finally {
      unlinkSync(filler);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A corrupt or unreadable database at start.

function stateWithGarbage(): { stateDir: string; modelsDir: string; db: string } {
  const stateDir = mkdtempSync(join(tmpdir(), 'isomodel-corrupt-'));
  const db = join(stateDir, 'isomodel.db');
  writeFileSync(db, 'this is not a SQLite database, whatever its name says\n'.repeat(200));
  return { stateDir, modelsDir: makeModelsDir(['revcomp']), db };
}

function assertExplains(message: string, db: string): void {
  assert.ok(message.includes(`cannot use the state database ${db}: file is not a database (SQLITE_NOTADB)`), message);
  assert.match(message, /It was left as it is\./);
  assert.match(message, /Restore it from a backup/);
  assert.ok(message.includes(`mv '${db}' '${db}.broken-`), message);
  assert.match(message, /--state-dir \(ISOMODEL_STATE_DIR\)/);
}

describe('a corrupt or unreadable state database at start', () => {
  it('in process: the Gateway refuses to start, names the file and the way out, and leaves it as it was', () => {
    const { stateDir, modelsDir, db } = stateWithGarbage();
    try {
      const before = sha(db);
      const config = loadConfig({
        cwd: stateDir,
        env: {},
        overrides: { port: 0, models_dir: modelsDir, state_dir: stateDir, watch: false },
      });
      assert.throws(
        () => new Gateway(config, pino({ level: 'silent' })),
        (e: unknown) => {
          assert.ok(e instanceof StateStoreError, String(e));
          assert.equal(e.file, db);
          assert.equal(e.code, 'SQLITE_NOTADB');
          assertExplains(e.message, db);
          return true;
        },
      );
      assert.equal(sha(db), before, 'the file is unchanged');
      assert.deepEqual(readdirSync(stateDir), ['isomodel.db'], 'nothing created beside it');
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(modelsDir, { recursive: true, force: true });
    }
  });

  it('`isomodel serve`: a clear message, no stack trace, exit code 1, the file unchanged', async () => {
    const { stateDir, modelsDir, db } = stateWithGarbage();
    try {
      const before = sha(db);
      const child = spawn(
        process.execPath,
        [
          join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
          '--state-dir',
          stateDir,
          '--models-dir',
          modelsDir,
          'serve',
          '--port',
          '0',
          '--no-watch',
        ],
        {
          cwd: stateDir,
          env: { PATH: process.env.PATH },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 1, `stdout: ${stdout}\nstderr: ${stderr}`);
      assert.ok(stderr.startsWith('isomodel: cannot use the state database '), stderr);
      assertExplains(stderr, db);
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
      assert.equal(sha(db), before);
      assert.deepEqual(readdirSync(stateDir), ['isomodel.db']);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(modelsDir, { recursive: true, force: true });
    }
  });

  it('a folder in place of the database, and a damaged schema, are named too', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'isomodel-unreadable-'));
    try {
      const db = join(stateDir, 'isomodel.db');
      mkdirSync(db);
      assert.throws(
        () => new StateStore(stateDir),
        (e: unknown) => {
          assert.ok(e instanceof StateStoreError, String(e));
          assert.ok(
            e.message.startsWith(
              `cannot use the state database ${db}: unable to open database file (SQLITE_CANTOPEN). It was left as it is.`,
            ),
            e.message,
          );
          assert.match(e.message, /can be read and written by this user \(uid \d+\)/);
          return true;
        },
      );
      assert.ok(existsSync(db) && readdirSync(db).length === 0);
      rmSync(db, { recursive: true });

      // A real database whose schema page is overwritten past its header.
      new StateStore(stateDir).close();
      rmSync(`${db}-wal`, { force: true });
      rmSync(`${db}-shm`, { force: true });
      const bytes = readFileSync(db);
      bytes.fill(0x5a, 100, 4096);
      writeFileSync(db, bytes);
      const before = sha(db);
      assert.throws(
        () => new StateStore(stateDir),
        (e: unknown) => {
          assert.ok(e instanceof StateStoreError, String(e));
          assert.match(e.code, /^SQLITE_(CORRUPT|NOTADB)/);
          assert.ok(e.message.includes(`cannot use the state database ${db}`), e.message);
          assert.ok(e.message.includes(`mv '${db}' '${db}.broken-`), e.message);
          return true;
        },
      );
      assert.equal(sha(db), before);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
