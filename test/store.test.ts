// The request log's buffered writes: every row lands once, in order, with its values, whether it
// goes in a 50-row statement or a single one.
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
        store.logRequest({ request_id: `r${i}`, model: 'm', version: i % 2 ? '1.0.0' : undefined, task: 't', route: 'single', status: i % 5 ? 'success' : 'error', error_code: i % 5 ? undefined : 'INVALID_SEQUENCE', sequences: i, latency_ms: i / 10, client: '127.0.0.1' });
      }
      store.flush();
      const rows = store.db.prepare('SELECT request_id, version, status, error_code, sequences, latency_ms, at FROM request_log ORDER BY id').all() as Record<string, unknown>[];
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
      assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM request_log').get() as { n: number }).n, 123, 'a second flush writes nothing again');
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
