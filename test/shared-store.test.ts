// The shared-state stores (src/store/shared/) against both databases: the embedded SQLite file
// and a real PostgreSQL cluster this file starts in a temp dir (skipped, with the reason, where
// PostgreSQL is not installed). Two store instances stand for two gateways; the SIGKILL test
// runs one gateway's job loop as a real child process.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JobStore } from '../src/jobs/store.js';
import type { InputRecord, OutputRecord } from '../src/jobs/formats.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { StateStore } from '../src/store/db.js';
import { ChangeFeed } from '../src/store/shared/changes.js';
import { SharedAuditLog } from '../src/store/shared/audit.js';

import { SharedJobWorker } from '../src/store/shared/job-worker.js';
import { SharedKeyStore } from '../src/store/shared/keys.js';
import { openSqlClient } from '../src/store/shared/open.js';
import { SharedTrafficStore } from '../src/store/shared/traffic.js';
import type { SqlClient, SqlRunner } from '../src/store/sql.js';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.js';
import { echoProcessor } from './shared-echo.js';
import { assertTakenOver, killHoldingLease } from './kill-holding-lease.js';

const CHILD = join(PACKAGE_ROOT, 'dist', 'test', 'shared-worker-child.js');

interface Backend {
  name: 'sqlite' | 'postgres';
  skip: string | false;
  /** A fresh database: where it is (URL or file) for openSqlClient. */
  fresh(): Promise<string>;
}

let cluster: PgCluster | null = null;
let dbCount = 0;
const tmp = mkdtempSync(join(tmpdir(), 'isomodel-shared-'));
const clients: SqlClient[] = [];
const feeds: ChangeFeed[] = [];
const children: ChildProcess[] = [];

const backends: Backend[] = [
  { name: 'sqlite', skip: false, fresh: () => Promise.resolve(join(mkdtempSync(join(tmp, 'db-')), 'state.db')) },
  { name: 'postgres', skip: pgUnavailable(), fresh: () => cluster!.createDatabase(`t${++dbCount}`) },
];

before(async () => {
  if (!pgUnavailable()) cluster = await startPgCluster();
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const f of feeds) await f.close();
  for (const c of clients) await c.close().catch(() => undefined);
  await cluster?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

function client(target: string): SqlClient {
  const c = openSqlClient(target, { onError: () => undefined });
  clients.push(c);
  return c;
}

async function feed(target: string, pollMs = 500): Promise<ChangeFeed> {
  const f = new ChangeFeed({ url: target.startsWith('postgres') ? target : undefined, pollMs });
  feeds.push(f);
  await f.start();
  return f;
}

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function records(n: number): InputRecord[] {
  return Array.from({ length: n }, (_, i) => ({ id: `seq${i}`, sequence: `ACGT${i}` }));
}

async function submit(store: JobStore, n: number, opts: { chunk?: number; key?: string; id?: string } = {}) {
  const { job, created } = await store.begin({
    id: opts.id ?? `job-${Math.random().toString(36).slice(2)}`,
    name: null,
    kind: 'predict',
    model: 'echo',
    task: 'echo',
    spec: JSON.stringify({ kind: 'predict', model: 'echo' }),
    chunk_size: opts.chunk ?? 50,
    workers: 1,
    priority: 0,
    idempotency_key: opts.key ?? null,
    request_hash: null,
    created_at: new Date().toISOString(),
    owner: 'k1',
    owner_name: 'alice',
  });
  if (!created) return { job, created };
  const input = records(n);
  for (let i = 0; i < n; i += 1000) await store.append(job.id, i, input.slice(i, i + 1000));
  return { job: await store.activate(job.id), created };
}

/** Every record has exactly one result, in input order, each the right one. */
async function assertAllOnceInOrder(store: JobStore, id: string, n: number): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  let next = 0;
  for (let from = 0; from < n; from += 1000) {
    const rows = await store.results(id, from, 1000);
    for (const r of rows) {
      assert.equal(r.idx, next++, 'results come in input order');
      assert.equal(r.status, 'success', `record ${r.idx} has a result`);
      const out = JSON.parse(r.result!) as OutputRecord;
      assert.equal(out.metadata.index, r.idx);
      assert.equal(out.output!.reversed, `ACGT${r.idx}`.split('').reverse().join(''));
      const who = String(out.output!.by);
      by.set(who, (by.get(who) ?? 0) + 1);
    }
  }
  assert.equal(next, n, 'one row per record');
  const job = (await store.get(id))!;
  assert.equal(job.status, 'succeeded');
  assert.equal(job.done, n, 'the counter counts each record once');
  assert.equal(job.failed, 0);
  return by;
}

function worker(store: JobStore, owner: string, leaseMs = 1500, delayMs = 5): SharedJobWorker {
  return new SharedJobWorker({
    store,
    owner,
    concurrency: 2,
    leaseMs,
    idleMs: 20,
    process: echoProcessor(owner, delayMs),
  });
}

for (const b of backends) {
  describe(`shared state store on ${b.name}`, { skip: b.skip }, () => {
    it('applies each versioned migration once, also when two gateways open the store', async () => {
      const target = await b.fresh();
      const [x, y] = [client(target), client(target)];
      await Promise.all([
        JobStore.open(x),
        JobStore.open(y),
        SharedKeyStore.open(x),
        SharedKeyStore.open(y),
        SharedAuditLog.open(x),
        SharedTrafficStore.open(y),
      ]);
      await JobStore.open(x);
      await SharedAuditLog.open(y);
      const rows = await x.query<{ namespace: string; version: number }>(
        'SELECT namespace, version FROM schema_migrations ORDER BY namespace',
      );
      assert.deepEqual(
        rows.map((r) => [r.namespace, Number(r.version)]),
        [
          ['audit', 2],
          ['auth', 1],
          ['job_chunks', 1],
          ['jobs', 2],
          ['traffic', 1],
        ],
      );
    });

    it('a key created through one gateway works on another; revoked there, it is refused on the first within a second', async () => {
      const target = await b.fresh();
      const [ca, cb] = [client(target), client(target)];
      const a = await SharedKeyStore.open(ca, [], await feed(target));
      const bb = await SharedKeyStore.open(cb, [], await feed(target));
      assert.equal(bb.any(), false);
      const { key, record } = await a.create('ci', ['predict']);
      const seen = await until('the new key works on B', () => bb.verify(key)?.id === record.id, 1000);
      assert.ok(seen <= 1000);
      assert.equal(bb.any(), true);
      assert.equal(bb.verify(`${key}x`), null, 'a wrong secret is refused');
      assert.equal(await bb.revoke('ci'), true);
      assert.equal(bb.verify(key), null, 'refused at once where it was revoked');
      await until('the revoked key is refused on A', () => a.verify(key) === null, 1000);
      assert.equal((await a.list()).find((k) => k.name === 'ci')?.revoked_at !== null, true);
      await assert.rejects(bb.create('ci', ['admin']), /already exists/);
    });

    it('a canary split set through one gateway applies on another', async () => {
      const target = await b.fresh();
      const a = await SharedTrafficStore.open(client(target), await feed(target));
      const bb = await SharedTrafficStore.open(client(target), await feed(target));
      const applied: unknown[] = [];
      bb.onChange((s) => applied.push(s.get('splice')?.weights));
      await a.save('splice', { defaultVersion: '1.0.0', weights: { '1.0.0': 90, '2.0.0': 10 }, history: ['0.9.0'] });
      await until('B applies the split', () => applied.length > 0, 1000);
      assert.deepEqual(applied.at(-1), { '1.0.0': 90, '2.0.0': 10 });
      assert.deepEqual(bb.load().get('splice')?.history, ['0.9.0']);
      await a.delete('splice');
      await until('B sees the split removed', () => !bb.load().has('splice'), 1000);
    });

    it('one audit log for every gateway', async () => {
      const target = await b.fresh();
      const a = await SharedAuditLog.open(client(target));
      const bb = await SharedAuditLog.open(client(target));
      a.record({
        actor: 'alice',
        key_id: 'k1',
        action: 'keys.create',
        route: '/v1/keys',
        params: { name: 'ci' },
        outcome: 'allowed',
        status: 200,
      });
      await a.flush();
      const [row] = await bb.query({ actor: 'alice' });
      assert.equal(row?.action, 'keys.create');
      assert.deepEqual(row?.params, { name: 'ci' });
      assert.equal(typeof row?.id, 'number');
    });

    it('an Idempotency-Key holds across gateways: two submissions at once make one job', async () => {
      const target = await b.fresh();
      const a = await JobStore.open(client(target));
      const bb = await JobStore.open(client(target));
      const [x, y] = await Promise.all([a.begin(newRow('ik-a', 'same')), bb.begin(newRow('ik-b', 'same'))]);
      assert.equal(x.job.id, y.job.id);
      assert.equal([x.created, y.created].filter(Boolean).length, 1);
      const other = await bb.begin({ ...newRow('ik-c', 'same'), owner: 'k2' });
      assert.equal(other.created, true, 'another owner may use the same key');
    });

    it("a key's quota holds across gateways: two of its jobs queued at once through two gateways, the second counts the first", async () => {
      const target = await b.fresh();
      const a = await JobStore.open(client(target));
      const bb = await JobStore.open(client(target));
      for (const [store, id] of [
        [a, 'q-a'],
        [bb, 'q-b'],
      ] as const) {
        await store.begin(newRow(id, null));
        await store.append(id, 0, records(5));
      }
      // At most one unfinished job per key; the check dawdles between its count and its verdict,
      // so checks that were not taking turns would both count none.
      const oneJob = (store: JobStore) => async (q: SqlRunner) => {
        const u = await store.usage('k1', q);
        await new Promise((r) => setTimeout(r, 300));
        if (u.jobs >= 1) throw new Error('quota: one unfinished job');
      };
      const outcomes = await Promise.allSettled([a.activate('q-a', oneJob(a)), bb.activate('q-b', oneJob(bb))]);
      assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'], JSON.stringify(outcomes));
      assert.deepEqual(await a.usage('k1'), { jobs: 1, records: 5 });
    });

    it('a job spread over two gateways: every record exactly once, in input order; progress and results from either', async () => {
      const target = await b.fresh();
      const a = await JobStore.open(client(target));
      const bb = await JobStore.open(client(target));
      const { job } = await submit(a, 3000, { chunk: 25 });
      const wa = worker(a, 'A');
      const wb = worker(bb, 'B');
      wa.start();
      wb.start();
      await until('the job finishes', async () => (await bb.get(job.id))?.status === 'succeeded', 60_000);
      await Promise.all([wa.stop(), wb.stop()]);
      const by = await assertAllOnceInOrder(bb, job.id, 3000);
      assert.ok(
        (by.get('A') ?? 0) > 0 && (by.get('B') ?? 0) > 0,
        `both gateways ran chunks: ${JSON.stringify([...by])}`,
      );
      const open = await a.sql.query<{ n: number }>(
        `SELECT CAST(COUNT(*) AS INTEGER) AS n FROM job_chunks WHERE job_id = ? AND status = 'open'`,
        [job.id],
      );
      assert.equal(Number(open[0]!.n), 0);
    });

    it('a gateway SIGKILLed mid-job: another takes its chunks over when their leases expire and finishes, each record once, in order', async () => {
      const target = await b.fresh();
      const bb = await JobStore.open(client(target));
      const n = 10_000;
      const { job } = await submit(bb, n, { chunk: 50 });
      const child = spawn(process.execPath, [CHILD], {
        env: { ...process.env, SHARED_DB: target, OWNER: 'A', LEASE_MS: '1500', DELAY_MS: '20' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      let claimed = 0;
      child
        .stdout!.setEncoding('utf8')
        .on('data', (s: string) => (claimed += s.split('\n').filter((l) => l.startsWith('claimed')).length));
      // A is mid-job: some chunks committed, two in flight.
      await until('A commits part of the job', async () => ((await bb.get(job.id))?.done ?? 0) >= 1000, 60_000);
      const held = await killHoldingLease(child, bb.sql, job.id, 'A');
      const atKill = (await bb.get(job.id))!;
      assert.ok(atKill.done < n, 'killed before the end');
      const wb = worker(bb, 'B', 1500, 1);
      wb.start();
      await until('B finishes the job', async () => (await bb.get(job.id))?.status === 'succeeded', 120_000);
      await wb.stop();
      const by = await assertAllOnceInOrder(bb, job.id, n);
      assert.ok((by.get('A') ?? 0) >= 1000 && (by.get('B') ?? 0) > 0, JSON.stringify([...by]));
      assert.ok(claimed > 0);
      await assertTakenOver(bb.sql, job.id, held);
    });

    it('a chunk whose run threw is given back and run again soon, not kept leased by the heartbeat of the chunks beside it', async () => {
      const target = await b.fresh();
      const store = await JobStore.open(client(target));
      const n = 400;
      const { job } = await submit(store, n, { chunk: 10 });
      const echo = echoProcessor('A', 20);
      let thrown = 0;
      // A long lease: waiting for it to expire would take longer than the test allows.
      const wk = new SharedJobWorker({
        store,
        owner: 'A',
        concurrency: 2,
        leaseMs: 60_000,
        idleMs: 20,
        retryDelayMs: 50,
        process: (j, chunk, signal) => {
          if (chunk[0]!.index === 100 && thrown++ === 0) return Promise.reject(new Error('transient'));
          return echo(j, chunk, signal);
        },
      });
      wk.start();
      try {
        await until('the job finishes', async () => (await store.get(job.id))?.status === 'succeeded', 20_000);
      } finally {
        await wk.stop();
      }
      assert.equal(thrown, 2, 'the chunk ran twice');
      await assertAllOnceInOrder(store, job.id, n);
      const [c] = await store.sql.query<{ attempts: number; status: string }>(
        'SELECT attempts, status FROM job_chunks WHERE job_id = ? AND lo = 100',
        [job.id],
      );
      assert.deepEqual([Number(c!.attempts), c!.status], [2, 'done']);
    });

    it('lists jobs for their owner, drops half-received submissions once stale and prunes finished jobs', async () => {
      const target = await b.fresh();
      const store = await JobStore.open(client(target));
      const done = await submit(store, 3, { chunk: 2 });
      const wk = worker(store, 'A', 1500, 1);
      wk.start();
      await until('the job finishes', async () => (await store.get(done.job.id))?.status === 'succeeded', 10_000);
      await wk.stop();
      const half = await store.begin(newRow('half', 'h1'));
      await store.append(half.job.id, 0, records(5));
      const listed = await store.list({ owner: 'k1', limit: 10, offset: 0 });
      assert.deepEqual(
        listed.jobs.map((j) => j.id),
        [done.job.id],
        'a submission being received is never listed',
      );
      assert.equal(listed.total, 1);
      assert.equal((await store.list({ owner: 'k2', limit: 10, offset: 0 })).total, 0);
      assert.equal(await store.purgeReceiving(60_000), 0, 'a fresh submission may still be arriving elsewhere');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await store.purgeReceiving(10), 1);
      assert.equal(await store.get('half'), undefined);
      assert.equal(await store.pruneFinished(new Date(Date.now() + 1000).toISOString()), 1);
      assert.equal(await store.get(done.job.id), undefined);
      const left = await store.sql.query<{ n: number }>('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM job_chunks');
      assert.equal(Number(left[0]!.n), 0);
    });

    it('cancel through one gateway stops the work on the other', async () => {
      const target = await b.fresh();
      const a = await JobStore.open(client(target));
      const bb = await JobStore.open(client(target));
      const { job } = await submit(a, 2000, { chunk: 10 });
      const wa = worker(a, 'A', 900, 50);
      wa.start();
      await until('A is running it', async () => ((await bb.get(job.id))?.done ?? 0) > 0, 30_000);
      assert.equal(await bb.finish(job.id, 'cancelled', 'cancelled by the client'), true);
      const cancelledAt = (await bb.get(job.id))!.done;
      // A's heartbeat finds its leases gone and abandons the chunks; it claims nothing of the job.
      await until('A lets go of the job', () => wa.held().length === 0, 2000);
      await new Promise((r) => setTimeout(r, 300));
      const later = (await bb.get(job.id))!;
      assert.equal(later.status, 'cancelled');
      assert.equal(later.done, cancelledAt, 'no result is written after the cancel');
      await wa.stop();
    });

    it('a job cancelled through a gateway is dropped by its own worker at once, not at the next heartbeat', async () => {
      const target = await b.fresh();
      const store = await JobStore.open(client(target));
      const { job } = await submit(store, 40, { chunk: 10 });
      // Heartbeats every 20 s and chunks that take a minute: only drop() can end them within the test.
      const w = new SharedJobWorker({
        store,
        owner: 'A',
        concurrency: 2,
        leaseMs: 60_000,
        idleMs: 20,
        process: echoProcessor('A', 60_000),
      });
      w.start();
      await until('A holds two chunks', () => w.held().length === 2, 10_000);
      await store.finish(job.id, 'cancelled', 'cancelled by the client');
      w.drop(job.id);
      await until('A lets go of them', () => w.held().length === 0, 5000);
      assert.equal((await store.get(job.id))!.done, 0, 'nothing was written');
      await w.stop();
    });
  });
}

function newRow(id: string, key: string | null) {
  return {
    id,
    name: null,
    kind: 'predict' as const,
    model: 'echo',
    task: 'echo',
    spec: '{}',
    chunk_size: 10,
    workers: 1,
    priority: 0,
    idempotency_key: key,
    request_hash: 'h',
    created_at: new Date().toISOString(),
    owner: 'k1',
    owner_name: 'alice',
  };
}

describe('shared state on the embedded SQLite file', () => {
  it('uses the tables the gateway already has: a state database of the embedded job store opens as a shared one', async () => {
    const dir = mkdtempSync(join(tmp, 'embedded-'));
    const state = new StateStore(dir);
    const embedded = JobStore.embedded(state);
    const { job } = await embedded.begin(newRow('old-job', 'k'));
    await embedded.append(job.id, 0, records(3));
    await embedded.activate(job.id);
    await embedded.sql.close();
    state.close();
    const shared = await JobStore.open(client(join(dir, 'isomodel.db')));
    assert.equal((await shared.get('old-job'))?.status, 'queued');
    assert.equal((await shared.usage('k1')).records, 3);
  });
});

describe('shared state on PostgreSQL', { skip: pgUnavailable() }, () => {
  it('LISTEN/NOTIFY carries a revocation to another gateway well before its polling would', async () => {
    const target = await cluster!.createDatabase(`t${++dbCount}`);
    const a = await SharedKeyStore.open(client(target), [], await feed(target, 60_000));
    const bb = await SharedKeyStore.open(client(target), [], await feed(target, 60_000));
    await until('B listens', () => feeds.at(-1)!.listening, 5000);
    const { key } = await a.create('n1', ['predict']);
    await until('B knows the key', () => bb.verify(key) !== null, 1000);
    await a.revoke('n1');
    await until('B refuses it', () => bb.verify(key) === null, 1000);
  });

  it('PostgreSQL restarted mid-job: the gateways reconnect and the job completes, each record once', async () => {
    const target = await cluster!.createDatabase(`t${++dbCount}`);
    const a = await JobStore.open(client(target));
    const bb = await JobStore.open(client(target));
    const n = 4000;
    const { job } = await submit(a, n, { chunk: 20 });
    const wa = worker(a, 'A', 3000, 10);
    const wb = worker(bb, 'B', 3000, 10);
    wa.start();
    wb.start();
    await until('the job is under way', async () => ((await a.get(job.id))?.done ?? 0) >= 400, 60_000);
    const stoppedAt = new Date().toISOString();
    await cluster!.stop('fast');
    await new Promise((r) => setTimeout(r, 500));
    await cluster!.start();
    await until(
      'the job finishes after the restart',
      async () => {
        try {
          return (await a.get(job.id))?.status === 'succeeded';
        } catch {
          return false;
        }
      },
      120_000,
    );
    await Promise.all([wa.stop(), wb.stop()]);
    await assertAllOnceInOrder(a, job.id, n);
    assert.ok((await a.get(job.id))!.finished_at! > stoppedAt, 'the job finished after the restart');
  });
});
