// The job store in a real SQLite file: the owners migration over a database of the previous
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
  return { id, name: null, kind: 'predict', model: 'm', task: null, spec: '{}', chunk_size: 10, workers: 1, priority: -1, idempotency_key: key, request_hash: 'h', created_at: new Date().toISOString(), owner, owner_name: owner };
}

const recs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ id: `s${from + i}`, sequence: 'ACGT' }));

describe('job store', () => {
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('gives jobs stored before owners existed the legacy owner, and scopes Idempotency-Keys per owner', () => {
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
    old.db.prepare(`INSERT INTO job_items (job_id, idx, input, status, result) VALUES ('old', 0, '{}', 'success', '{}'), ('old', 1, '{}', 'success', '{}')`).run();
    old.close();

    const ss = new StateStore(dir);
    const store = new JobStore(ss);
    const legacy = store.get('old')!;
    assert.equal(legacy.owner, LEGACY_OWNER);
    assert.equal(legacy.name, 'before');
    assert.deepEqual(store.results('old', 0, 10).length, 2, 'the records are untouched');
    assert.equal(store.list({ owner: 'abc', limit: 10, offset: 0 }).total, 0, 'no key owns it');
    assert.equal(store.list({ limit: 10, offset: 0 }).total, 1);
    // The same Idempotency-Key under another owner is another job; under the same owner, the same one.
    assert.equal(store.begin(row('a1', 'abc', 'k1')).created, true);
    const again = store.begin(row('a2', 'abc', 'k1'));
    assert.deepEqual([again.created, again.job.id], [false, 'a1']);
    assert.equal(store.getByKey(LEGACY_OWNER, 'k1')!.id, 'old');
    assert.equal(store.getByKey('xyz', 'k1'), undefined);
    ss.close();
  });

  it('keeps a submission invisible until it is queued; quotas count queued and running records', () => {
    const ss = new StateStore(stateDir());
    const store = new JobStore(ss);
    store.begin(row('j', 'o'));
    store.append('j', 0, recs(150));
    store.append('j', 150, recs(50, 150));
    assert.equal(store.list({ limit: 10, offset: 0 }).total, 0, 'not listed while received');
    assert.equal(store.active().length, 0, 'not run while received');
    assert.deepEqual(store.usage('o'), { jobs: 0, records: 0 });
    assert.throws(() => store.activate('j', () => {
      throw new Error('over quota');
    }), /over quota/);
    assert.equal(store.get('j')!.status, 'receiving', 'a refused activation changes nothing');
    const job = store.activate('j', () => undefined);
    assert.deepEqual([job.status, job.total], ['queued', 200]);
    assert.deepEqual(store.usage('o'), { jobs: 1, records: 200 });
    assert.equal(store.pendingAfter('j', -1, 1000).length, 200);
    assert.deepEqual(
      store.pendingAfter('j', 98, 3).map((r) => [r.idx, r.input.id]),
      [
        [99, 's99'],
        [100, 's100'],
        [101, 's101'],
      ],
    );
    assert.throws(() => store.append('j', 200, recs(1)), /not being received/);
    ss.close();
  });

  it('deletes a failed submission in pieces, and what a crash left half-received at the next start', () => {
    const dir = stateDir();
    const ss = new StateStore(dir);
    const store = new JobStore(ss);
    const items = (id: string) => (ss.db.prepare('SELECT COUNT(*) AS n FROM job_items WHERE job_id = ?').get(id) as { n: number }).n;
    store.begin(row('fail', 'o'));
    store.append('fail', 0, recs(250));
    assert.equal(store.discardSome('fail', 100), false);
    assert.equal(items('fail'), 150);
    assert.equal(store.discardSome('fail', 100), false);
    assert.equal(items('fail'), 50);
    assert.equal(store.discardSome('fail', 100), true);
    assert.equal(store.get('fail'), undefined);
    assert.equal(items('fail'), 0);

    store.begin(row('crashed', 'o'));
    store.append('crashed', 0, recs(30));
    store.begin(row('kept', 'o'));
    store.append('kept', 0, recs(3));
    store.activate('kept', () => undefined);
    ss.close();
    const next = new JobStore(new StateStore(dir));
    assert.equal(next.purgeReceiving(), 1);
    assert.equal(next.get('crashed'), undefined);
    assert.equal(next.get('kept')!.total, 3);
  });
  it('deletes finished jobs past their retention with their records, never unfinished ones', () => {
    const ss = new StateStore(stateDir());
    const store = new JobStore(ss);
    for (const id of ['done-old', 'failed-old', 'running', 'done-new']) {
      store.begin(row(id, 'o'));
      store.append(id, 0, recs(120));
      store.activate(id, () => undefined);
    }
    store.finish('done-old', 'succeeded');
    store.finish('failed-old', 'failed', 'x');
    store.markRunning('running');
    ss.db.prepare("UPDATE jobs SET finished_at = '2020-01-01T00:00:00.000Z' WHERE id IN ('done-old', 'failed-old')").run();
    store.finish('done-new', 'succeeded');
    assert.equal(store.pruneFinished('2021-01-01T00:00:00.000Z', 1), 2, 'in batches of one');
    assert.deepEqual(store.list({ limit: 10, offset: 0 }).jobs.map((j) => j.id).sort(), ['done-new', 'running']);
    const orphans = ss.db.prepare("SELECT COUNT(*) AS n FROM job_items WHERE job_id IN ('done-old', 'failed-old')").get() as { n: number };
    assert.equal(orphans.n, 0, 'their records went with them');
    assert.equal(store.pruneFinished(new Date(Date.now() + 1000).toISOString()), 1, 'a running job is never pruned');
    assert.equal(store.get('running')!.status, 'running');
    ss.close();
  });
});
