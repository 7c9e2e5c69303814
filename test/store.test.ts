// The request log's buffered writes, made on a writer thread: every row lands once, in order,
// with its values, whether it goes in a 50-row statement or a single one; a flush waits for the
// thread; a row SQLite refuses is reported, costs only itself, and never hangs a flush.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StateStore } from '../src/store/db.js';

describe('request log', () => {
  it('writes 123 buffered rows (two full statements and 23 single ones) exactly once, in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-store-'));
    const store = new StateStore(dir);
    try {
      for (let i = 0; i < 123; i++) {
        store.logRequest({
          request_id: `r${i}`,
          model: 'm',
          version: i % 2 ? '1.0.0' : undefined,
          task: 't',
          route: 'single',
          status: i % 5 ? 'success' : 'error',
          error_code: i % 5 ? undefined : 'INVALID_SEQUENCE',
          sequences: i,
          latency_ms: i / 10,
          client: '127.0.0.1',
        });
      }
      store.flush();
      const rows = store.db
        .prepare(
          'SELECT request_id, version, status, error_code, sequences, latency_ms, at FROM request_log ORDER BY id',
        )
        .all() as Record<string, unknown>[];
      assert.equal(rows.length, 123);
      rows.forEach((r, i) => {
        assert.equal(r.request_id, `r${i}`);
        assert.equal(r.version, i % 2 ? '1.0.0' : null);
        assert.equal(r.status, i % 5 ? 'success' : 'error');
        assert.equal(r.error_code, i % 5 ? null : 'INVALID_SEQUENCE');
        assert.equal(r.sequences, i);
        assert.equal(r.latency_ms, i / 10);
        assert.match(String(r.at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      });
      store.flush();
      assert.equal(
        (store.db.prepare('SELECT COUNT(*) AS n FROM request_log').get() as { n: number }).n,
        123,
        'a second flush writes nothing again',
      );
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hands full buffers to the thread without waiting; flush and close wait for every row', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-store-'));
    const entry = (i: number) => ({
      request_id: `q${i}`,
      model: i % 3 ? 'a' : 'b',
      route: 'single',
      status: 'success' as const,
      sequences: 1,
      latency_ms: 1,
    });
    let store = new StateStore(dir);
    try {
      for (let i = 0; i < 2600; i++) store.logRequest(entry(i)); // five full hand-overs (500 rows each) and 100 rows still buffered
      store.close(); // flushes the rest and waits for the thread
      store = new StateStore(dir);
      const n = store.db
        .prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS d, MIN(id) AS lo, MAX(id) AS hi FROM request_log')
        .get() as { n: number; d: number; lo: number; hi: number };
      assert.deepEqual(n, { n: 2600, d: 2600, lo: 1, hi: 2600 });
      assert.equal(store.recentRequests(1, 'b')[0]!.request_id, 'q2598', 'a reader sees the newest rows');
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loses only the rows SQLite refuses, reports them, and the flush still returns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-store-'));
    const errors: string[] = [];
    const store = new StateStore(dir, undefined, (m) => errors.push(m));
    const entry = (id: string, model: string) => ({
      request_id: id,
      model,
      route: 'single',
      status: 'success' as const,
      sequences: 1,
      latency_ms: 1,
    });
    try {
      store.logRequest(entry('ok', 'm'));
      store.flush();
      // One row with a NOT NULL column left empty among good ones: the batch's transaction fails,
      // the thread writes the batch again row by row.
      store.logRequest(entry('before', 'm'));
      store.logRequest(entry('bad', null as unknown as string));
      store.logRequest(entry('after', 'm'));
      const t0 = Date.now();
      store.flush();
      assert.ok(Date.now() - t0 < 9000, 'the flush did not sit out its 10 s timeout');
      const rows = store.db.prepare('SELECT request_id, at FROM request_log ORDER BY id').all() as {
        request_id: string;
        at: string;
      }[];
      assert.deepEqual(
        rows.map((r) => r.request_id),
        ['ok', 'before', 'after'],
      );
      for (const r of rows) assert.match(r.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    } finally {
      store.close();
    }
    // The thread's message arrives on the event loop.
    return new Promise<void>((resolve) => setTimeout(resolve, 200)).then(() => {
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(errors[0]!, /request log: 1 of 3 rows not written: NOT NULL constraint failed: request_log\.model/);
      rmSync(dir, { recursive: true, force: true });
    });
  });
});
