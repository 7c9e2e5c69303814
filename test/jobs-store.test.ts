// The embedded job store in a real SQLite file: the owners migration over a database of the previous
// schema, Idempotency-Keys unique per owner, submissions that are received in batches and are
// invisible until queued, and what a failed or interrupted submission leaves (nothing).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StateStore } from '../src/store/db.js';
import { JOB_MIGRATIONS, JobStore, LEGACY_OWNER, type NewJobRow } from '../src/jobs/store.js';

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'isomodel-jobstore-'));
  dirs.push(d);
  return d;
}

function row(id: string, owner: string, key: string | null = null): NewJobRow {
  return {
    id,
    name: null,
    kind: 'predict',
    model: 'm',
    task: null,
    spec: '{}',
    chunk_size: 10,
    workers: 1,
    priority: -1,
    idempotency_key: key,
    request_hash: 'h',
    created_at: new Date().toISOString(),
    owner,
    owner_name: owner,
  };
}

const recs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ id: `s${from + i}`, sequence: 'ACGT' }));

describe('job store', () => {
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('gives jobs stored before owners existed the legacy owner, and scopes Idempotency-Keys per owner', async () => {
    const dir = stateDir();
    const old = new StateStore(dir);
    // The schema as the previous release left it, with a job under an Idempotency-Key.
    old.migrateNamespace('jobs', JOB_MIGRATIONS.slice(0, 1));
    old.db
      .prepare(
        `INSERT INTO jobs (id, name, kind, model, task, spec, status, total, done, chunk_size, workers, idempotency_key, request_hash, created_at, updated_at)
         VALUES ('old', 'before', 'predict', 'm', NULL, '{}', 'succeeded', 2, 2, 10, 1, 'k1', 'h', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')`,
      )
      .run();
    old.db
      .prepare(
        `INSERT INTO job_items (job_id, idx, input, status, result) VALUES ('old', 0, '{}', 'success', '{}'), ('old', 1, '{}', 'success', '{}')`,
      )
      .run();
    old.close();

    const ss = new StateStore(dir);
    const store = JobStore.embedded(ss);
    const legacy = (await store.get('old'))!;
    assert.equal(legacy.owner, LEGACY_OWNER);
    assert.equal(legacy.name, 'before');
    assert.deepEqual((await store.results('old', 0, 10)).length, 2, 'the records are untouched');
    assert.equal((await store.list({ owner: 'abc', limit: 10, offset: 0 })).total, 0, 'no key owns it');
    assert.equal((await store.list({ limit: 10, offset: 0 })).total, 1);
    // The same Idempotency-Key under another owner is another job; under the same owner, the same one.
    assert.equal((await store.begin(row('a1', 'abc', 'k1'))).created, true);
    const again = await store.begin(row('a2', 'abc', 'k1'));
    assert.deepEqual([again.created, again.job.id], [false, 'a1']);
    assert.equal((await store.getByKey(LEGACY_OWNER, 'k1'))!.id, 'old');
    assert.equal(await store.getByKey('xyz', 'k1'), undefined);
    ss.close();
  });

  it('keeps a submission invisible until it is queued; quotas count queued and running records', async () => {
    const ss = new StateStore(stateDir());
    const store = JobStore.embedded(ss);
    await store.begin(row('j', 'o'));
    await store.append('j', 0, recs(150));
    await store.append('j', 150, recs(50, 150));
    assert.equal((await store.list({ limit: 10, offset: 0 })).total, 0, 'not listed while received');
    assert.equal((await store.active()).length, 0, 'not run while received');
    assert.deepEqual(await store.usage('o'), { jobs: 0, records: 0 });
    await assert.rejects(
      store.activate('j', () => {
        throw new Error('over quota');
      }),
      /over quota/,
    );
    assert.equal((await store.get('j'))!.status, 'receiving', 'a refused activation changes nothing');
    const job = await store.activate('j', () => undefined);
    assert.deepEqual([job.status, job.total], ['queued', 200]);
    assert.deepEqual(await store.usage('o'), { jobs: 1, records: 200 });
    assert.equal((await store.pendingAfter('j', -1, 1000)).length, 200);
    assert.equal(
      (ss.db.prepare('SELECT COUNT(*) AS n FROM job_chunks').get() as { n: number }).n,
      0,
      'the embedded store cuts no leased chunks',
    );
    assert.deepEqual(
      (await store.pendingAfter('j', 98, 3)).map((r) => [r.idx, r.input.id]),
      [
        [99, 's99'],
        [100, 's100'],
        [101, 's101'],
      ],
    );
    await assert.rejects(store.append('j', 200, recs(1)), /not being received/);
    ss.close();
  });

  it('deletes a failed submission in pieces, and what a crash left half-received at the next start', async () => {
    const dir = stateDir();
    const ss = new StateStore(dir);
    const store = JobStore.embedded(ss);
    const items = (id: string) =>
      (ss.db.prepare('SELECT COUNT(*) AS n FROM job_items WHERE job_id = ?').get(id) as { n: number }).n;
    await store.begin(row('fail', 'o'));
    await store.append('fail', 0, recs(250));
    assert.equal(await store.discardSome('fail', 100), false);
    assert.equal(items('fail'), 150);
    assert.equal(await store.discardSome('fail', 100), false);
    assert.equal(items('fail'), 50);
    assert.equal(await store.discardSome('fail', 100), true);
    assert.equal(await store.get('fail'), undefined);
    assert.equal(items('fail'), 0);

    await store.begin(row('crashed', 'o'));
    await store.append('crashed', 0, recs(30));
    await store.begin(row('kept', 'o'));
    await store.append('kept', 0, recs(3));
    await store.activate('kept', () => undefined);
    await store.sql.close();
    ss.close();
    const startedAt = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    const next = JobStore.embedded(new StateStore(dir));
    await next.begin(row('arriving', 'o'));
    assert.equal(
      await next.purgeReceiving(Date.now() - startedAt),
      1,
      'what the previous process was receiving, not what this one is',
    );
    assert.equal(await next.get('crashed'), undefined);
    assert.equal((await next.get('kept'))!.total, 3);
    assert.equal((await next.get('arriving'))!.status, 'receiving');
  });
  it('deletes finished jobs past their retention with their records, never unfinished ones', async () => {
    const ss = new StateStore(stateDir());
    const store = JobStore.embedded(ss);
    for (const id of ['done-old', 'failed-old', 'running', 'done-new']) {
      await store.begin(row(id, 'o'));
      await store.append(id, 0, recs(120));
      await store.activate(id, () => undefined);
    }
    await store.finish('done-old', 'succeeded');
    await store.finish('failed-old', 'failed', 'x');
    await store.markRunning('running');
    ss.db
      .prepare("UPDATE jobs SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id IN ('done-old', 'failed-old')")
      .run();
    await store.finish('done-new', 'succeeded');
    assert.equal(await store.pruneFinished('2021-01-01T00:00:00.000Z', 1), 2, 'in batches of one');
    assert.deepEqual((await store.list({ limit: 10, offset: 0 })).jobs.map((j) => j.id).sort(), [
      'done-new',
      'running',
    ]);
    const orphans = ss.db
      .prepare("SELECT COUNT(*) AS n FROM job_items WHERE job_id IN ('done-old', 'failed-old')")
      .get() as { n: number };
    assert.equal(orphans.n, 0, 'their records went with them');
    assert.equal(
      await store.pruneFinished(new Date(Date.now() + 1000).toISOString()),
      1,
      'a running job is never pruned',
    );
    assert.equal((await store.get('running'))!.status, 'running');
    ss.close();
  });
});
