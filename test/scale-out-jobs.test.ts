// Jobs over HTTP across gateways that share PostgreSQL (database_url): a job submitted to
// gateway A (`isomodel serve`, a real child process) is stored in PostgreSQL, and gateway B (in
// this process) answers its progress, results and cancel, honours its Idempotency-Key, counts
// it in the key's quotas and keeps it from other keys. A is SIGKILLed mid-job and B finishes
// it and serves every record exactly once, in input order. One real PostgreSQL cluster, started
// by this file in a temp dir (skipped, with the reason, where PostgreSQL is not installed).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PostgresClient } from '../src/store/sql.js';
import { assertTakenOver, killHoldingLease } from './kill-holding-lease.js';
import { request, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.js';
import { ServeProcess } from './serve-process.js';
import { writePacedModel } from './paced-model.js';

/** Record i's sequence: its length tells its result apart from its neighbours'. */
const seq = (i: number): string => 'ACGT'.repeat(1 + (i % 5));
const sequences = (n: number): string[] => Array.from({ length: n }, (_, i) => seq(i));

interface JsonlRecord {
  status: string;
  output?: { length: number; pid: number };
  metadata: { index: number; request_id: string };
}

describe('jobs over HTTP across gateways sharing PostgreSQL', { skip: pgUnavailable() }, () => {
  let cluster: PgCluster;
  let url: string;
  let models: string;
  let stateA: string;
  let a: ServeProcess;
  let b: Harness;
  let sql: PostgresClient;
  const keys: Record<'alice' | 'bob' | 'ops', Record<string, string>> = { alice: {}, bob: {}, ops: {} };

  const onA = <T = any>(
    method: string,
    path: string,
    key: Record<string, string>,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => request<T>(a.url + path, method, body, { ...key, ...headers });
  const onB = <T = any>(
    method: string,
    path: string,
    key: Record<string, string>,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => request<T>(b.url + path, method, body, { ...key, ...headers });
  const job = async (id: string) =>
    (await onB('GET', `/v1/jobs/${id}`, keys.ops)).body.data as { status: string; done: number; total: number };

  /** Sequences A's workers have computed for jobs (its Prometheus counter, source="job"). */
  async function jobSequencesOnA(): Promise<number> {
    const text = await (await fetch(`${a.url}/metrics/prometheus`, { headers: keys.ops })).text();
    let n = 0;
    for (const line of text.split('\n'))
      if (line.startsWith('isomodel_sequences_total{') && line.includes('source="job"'))
        n += Number(line.split(' ').pop());
    return n;
  }

  before(async () => {
    cluster = await startPgCluster();
    url = await cluster.createDatabase('httpjobs');
    models = workerTmpDir('isomodel-paced-'); // workers (nobody, as root) read the package
    writePacedModel(join(models, 'paced'));
    stateA = mkdtempSync(join(tmpdir(), 'isomodel-state-a-'));
    a = new ServeProcess({
      env: {
        ISOMODEL_DATABASE_URL: url,
        ISOMODEL_MODELS_DIR: models,
        ISOMODEL_STATE_DIR: stateA,
        ISOMODEL_RATE_LIMIT: '0',
      },
    });
    await a.start();
    await a.settled();
    // B allows one unfinished job per key: a job A accepted counts there.
    b = await startGateway([], { database_url: url, models_dir: models, jobs: { max_queued_jobs_per_key: 1 } });
    for (const name of ['alice', 'bob'] as const)
      keys[name] = { authorization: `Bearer ${(await b.gw.keyring.create(name, ['predict'])).key}` };
    keys.ops = { authorization: `Bearer ${(await b.gw.keyring.create('ops', ['predict', 'admin'])).key}` };
    // A knows the keys once it refuses a caller without one (with auth off, alice's request passes too).
    await waitFor(async () => (await onA('GET', '/v1/jobs', {})).status === 401, 5000, 50);
    assert.equal((await onA('GET', '/v1/jobs', keys.alice)).status, 200);
    sql = new PostgresClient(url);
  });

  after(async () => {
    a?.child.kill('SIGKILL');
    await b?.close();
    await sql?.close();
    await cluster?.destroy();
    for (const d of [stateA, models]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('a job submitted to A is answered by B; its Idempotency-Key holds on B; another key cannot see it anywhere', async () => {
    const body = { model: 'paced', task: 'length', sequences: sequences(40), chunk_size: 8 };
    const idem = { 'idempotency-key': 'nightly-run-1' };
    const sub = await onA('POST', '/v1/jobs', keys.alice, body, idem);
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const id = sub.body.data.id as string;
    const [row] = await sql.query<{ owner_name: string; total: number }>(
      'SELECT owner_name, total FROM jobs WHERE id = ?',
      [id],
    );
    assert.deepEqual([row?.owner_name, Number(row?.total)], ['alice', 40], 'the job is stored in PostgreSQL');

    // The same submission under the same key through B is A's job, not a new one.
    const again = await onB('POST', '/v1/jobs', keys.alice, body, idem);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.data.id, id);
    const other = await onB('POST', '/v1/jobs', keys.alice, { ...body, sequences: sequences(41) }, idem);
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, 'IDEMPOTENCY_CONFLICT');
    assert.equal(other.body.error.details.job_id, id);
    // Keys are per owner: bob's first use of the same Idempotency-Key is bob's own job (on A).
    const bobs = await onA('POST', '/v1/jobs', keys.bob, { ...body, sequences: sequences(3) }, idem);
    assert.equal(bobs.status, 202);
    assert.notEqual(bobs.body.data.id, id);

    await waitFor(async () => (await job(id)).status === 'succeeded', 60_000, 50);
    const status = await onB('GET', `/v1/jobs/${id}`, keys.alice);
    assert.equal(status.status, 200);
    assert.deepEqual([status.body.data.status, status.body.data.done, status.body.data.failed], ['succeeded', 40, 0]);
    const lines = (await (await fetch(`${b.url}/v1/jobs/${id}/results`, { headers: keys.alice })).text())
      .trim()
      .split('\n');
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as JsonlRecord).metadata.index),
      Array.from({ length: 40 }, (_, i) => i),
    );

    // Bob: 404 for alice's job on either gateway, as for a job that does not exist; not listed.
    for (const gw of [onA, onB]) {
      for (const [method, path] of [
        ['GET', `/v1/jobs/${id}`],
        ['GET', `/v1/jobs/${id}/results`],
        ['POST', `/v1/jobs/${id}/cancel`],
      ] as const) {
        const r = await gw(method, path, keys.bob);
        assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'NOT_FOUND');
      }
      const listed = await gw('GET', '/v1/jobs', keys.bob);
      assert.deepEqual(
        listed.body.data.jobs.map((j: { id: string }) => j.id),
        [bobs.body.data.id],
      );
      assert.equal((await gw('GET', '/v1/jobs', keys.alice)).body.data.total, 1);
    }
    // An admin key sees it from either gateway, with its owner.
    assert.equal((await onA('GET', `/v1/jobs/${id}`, keys.ops)).body.data.owner.name, 'alice');
    await waitFor(async () => (await job(bobs.body.data.id)).status === 'succeeded', 60_000, 50);
  });

  it("a raw FASTA upload to A is one job in PostgreSQL; a job A accepted counts in the key's quota on B; cancelled through B, A stops working on it", async () => {
    const n = 30_000;
    const fasta = sequences(n)
      .map((s, i) => `>r${i}\n${s}\n`)
      .join('');
    const up = await fetch(`${a.url}/v1/jobs?model=paced&task=length&chunk_size=8`, {
      method: 'POST',
      headers: { ...keys.alice, 'content-type': 'text/x-fasta' },
      body: fasta,
    });
    const sub = (await up.json()) as { data: { id: string; total: number } };
    assert.equal(up.status, 202, JSON.stringify(sub));
    const id = sub.data.id;
    assert.equal(sub.data.total, n);

    // B allows alice one unfinished job, and the one A accepted is it.
    const refused = await onB('POST', '/v1/jobs', keys.alice, { model: 'paced', sequences: ['ACGT'] });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'QUOTA_EXCEEDED');
    assert.equal(refused.body.error.details.unfinished_jobs, 1);

    // Under way, on A's workers too.
    await waitFor(async () => (await job(id)).done >= 800 && (await jobSequencesOnA()) > 0, 120_000, 50);
    const cancel = await onB('POST', `/v1/jobs/${id}/cancel`, keys.alice);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.equal(cancel.body.data.status, 'cancelled');
    const at = (await job(id)).done;
    assert.ok(at < n, 'cancelled mid-job');
    // A's heartbeat (a third of its 10 s lease) finds the job over and drops its chunks: its
    // workers stop computing for it, and nothing more is written.
    let last = await jobSequencesOnA();
    await waitFor(
      async () => {
        await new Promise((r) => setTimeout(r, 1500));
        const now = await jobSequencesOnA();
        const still = now === last;
        last = now;
        return still;
      },
      30_000,
      0,
    );
    const [written] = await sql.query<{ n: number }>(
      `SELECT CAST(COUNT(*) AS INTEGER) AS n FROM job_items WHERE job_id = ? AND status != 'pending'`,
      [id],
    );
    const after = await job(id);
    assert.equal(after.status, 'cancelled');
    assert.equal(after.done, at, 'no result was counted after the cancel');
    assert.equal(Number(written!.n), at, 'no result was written after the cancel');
    // The place is free again, on B as on A.
    const next = await onB('POST', '/v1/jobs', keys.alice, { model: 'paced', sequences: ['ACGT'] });
    assert.equal(next.status, 202, JSON.stringify(next.body));
    await waitFor(async () => (await job(next.body.data.id)).status === 'succeeded', 60_000, 50);
  });

  it('10,000 sequences submitted over HTTP to A; A is SIGKILLed mid-job; B finishes it and serves every record exactly once, in input order', async () => {
    const n = 10_000;
    const before = await jobSequencesOnA();
    const sub = await onA('POST', '/v1/jobs', keys.alice, {
      model: 'paced',
      task: 'length',
      sequences: sequences(n),
      chunk_size: 8,
      name: 'takeover',
    });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const id = sub.body.data.id as string;
    await waitFor(async () => (await job(id)).done >= 1000 && (await jobSequencesOnA()) > before, 120_000, 50);
    const held = await killHoldingLease(a.child, sql, id, `%:${a.child.pid}:%`);
    const atKill = await job(id);
    assert.equal(atKill.status, 'running');
    assert.ok(atKill.done < n, 'killed mid-job');

    await waitFor(async () => (await job(id)).status === 'succeeded', 240_000, 100);
    // Followed from the start through B, as a client would: every record once, in order, each its own result.
    const res = await fetch(`${b.url}/v1/jobs/${id}/results`, { headers: keys.alice });
    assert.equal(res.status, 200);
    const lines = (await res.text()).trim().split('\n');
    assert.equal(lines.length, n, 'one line per record');
    const pids = new Set<number>();
    lines.forEach((line, i) => {
      const r = JSON.parse(line) as JsonlRecord;
      assert.equal(r.metadata.index, i, 'in input order');
      assert.equal(r.status, 'success');
      assert.equal(r.output!.length, seq(i).length, 'the result of this very record');
      pids.add(r.output!.pid);
    });
    assert.ok(pids.size >= 2, 'workers of both gateways answered');
    const done = await onB('GET', `/v1/jobs/${id}`, keys.alice);
    assert.deepEqual([done.body.data.done, done.body.data.failed, done.body.data.pending], [n, 0, 0]);
    await assertTakenOver(sql, id, held);
    // CSV, now that it is done, through B as well.
    const csv = (await (await fetch(`${b.url}/v1/jobs/${id}/results?format=csv`, { headers: keys.alice })).text())
      .trim()
      .split('\n');
    assert.equal(csv.length, n + 1);
  });
});
