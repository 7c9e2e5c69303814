// ModelStats and LatencyWindow (src/scheduler/model-stats.ts) directly: what /metrics and the
// monitor summarise per model. Every figure is checked against a value worked out by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyWindow, ModelStats, WORK_SOURCES } from '../src/scheduler/model-stats.js';

describe('LatencyWindow', () => {
  it('has no percentile before the first value', () => {
    const w = new LatencyWindow();
    assert.equal(w.percentile(50), null);
    assert.equal(w.percentile(99), null);
  });

  it('takes the value at floor(p/100 * n) of the sorted values, the last one at most', () => {
    const w = new LatencyWindow();
    for (const v of [40, 10, 30, 20]) w.push(v);
    // sorted: 10 20 30 40; p50 -> index 2, p99 -> index 3, p0 -> index 0, p100 -> clamped to 3
    assert.equal(w.percentile(50), 30);
    assert.equal(w.percentile(99), 40);
    assert.equal(w.percentile(0), 10);
    assert.equal(w.percentile(100), 40);
    assert.equal(w.percentile(25), 20);
    assert.equal(w.percentile(74), 30);
    assert.equal(w.percentile(75), 40);
    const one = new LatencyWindow();
    one.push(7);
    assert.equal(one.percentile(50), 7);
    assert.equal(one.percentile(99), 7);
  });

  it('sorts numerically, not as strings', () => {
    const w = new LatencyWindow();
    for (const v of [100, 9, 20]) w.push(v);
    assert.equal(w.percentile(0), 9);
    assert.equal(w.percentile(50), 20);
    assert.equal(w.percentile(99), 100);
  });

  it('keeps the last 2048 values: the oldest are overwritten in turn', () => {
    const w = new LatencyWindow();
    for (let i = 0; i < 2048; i++) w.push(1000); // a full window of 1000 ms
    assert.equal(w.percentile(0), 1000);
    w.push(1); // replaces the oldest 1000
    assert.equal(w.percentile(0), 1);
    assert.equal(w.percentile(99), 1000);
    for (let i = 0; i < 2047; i++) w.push(1); // every 1000 is gone now
    assert.equal(w.percentile(99), 1);
    assert.equal(w.percentile(100), 1);
  });
});

describe('ModelStats', () => {
  it('starts at zero, with every figure that needs a request null', () => {
    const s = new ModelStats().summary();
    assert.deepEqual(s, {
      total_requests: 0,
      successful_requests: 0,
      failed_requests: 0,
      total_sequences: 0,
      average_response_time: null,
      p50_response_time_ms: null,
      p99_response_time_ms: null,
      p50_queue_time_ms: null,
      batches: 0,
      average_batch_size: null,
      padding_ratio: null,
      worker_restarts: 0,
      errors_by_code: {},
      by_source: Object.fromEntries(
        WORK_SOURCES.map((k) => [k, { requests: 0, successful: 0, failed: 0, sequences: 0 }]),
      ),
    });
    assert.deepEqual(WORK_SOURCES, ['api', 'job', 'pipeline']);
  });

  it('counts requests, outcomes and sequences by source; latency only for API requests', () => {
    const stats = new ModelStats();
    stats.record(true, 100, 3); // api by default
    stats.record(false, 300, 2, 'TIMEOUT', 'api');
    stats.record(true, 5000, 10, undefined, 'job');
    stats.record(false, 7000, 4, 'INVALID_INPUT', 'pipeline');
    stats.record(false, 9000, 1, undefined, 'job'); // a failure without a code counts, under no code
    const s = stats.summary();
    assert.equal(s.total_requests, 5);
    assert.equal(s.successful_requests, 2);
    assert.equal(s.failed_requests, 3);
    assert.equal(s.total_sequences, 20);
    assert.deepEqual(s.errors_by_code, { TIMEOUT: 1, INVALID_INPUT: 1 });
    assert.deepEqual(s.by_source, {
      api: { requests: 2, successful: 1, failed: 1, sequences: 5 },
      job: { requests: 2, successful: 1, failed: 1, sequences: 11 },
      pipeline: { requests: 1, successful: 0, failed: 1, sequences: 4 },
    });
    // (100 + 300) ms over the 2 API requests = 200 ms = 0.2 s; jobs' times are not response times.
    assert.equal(s.average_response_time, 0.2);
    assert.equal(s.p50_response_time_ms, 300);
    assert.equal(s.p99_response_time_ms, 300);
    assert.equal(stats.latency.percentile(0), 100);
  });

  it('counts each error code, and none for a success that names one', () => {
    const stats = new ModelStats();
    stats.record(false, 1, 1, 'TIMEOUT');
    stats.record(false, 1, 1, 'TIMEOUT');
    stats.record(false, 1, 1, 'QUEUE_FULL');
    stats.record(true, 1, 1, 'TIMEOUT');
    assert.deepEqual(stats.summary().errors_by_code, { TIMEOUT: 2, QUEUE_FULL: 1 });
  });

  it('rounds to a thousandth: seconds for the average, milliseconds for percentiles', () => {
    const stats = new ModelStats();
    stats.record(true, 1.23456, 1);
    stats.record(true, 2.0004, 1);
    stats.queueWait.push(0.12345);
    const s = stats.summary();
    // (1.23456 + 2.0004) / 2 / 1000 = 0.00161748 s -> 0.002
    assert.equal(s.average_response_time, 0.002);
    assert.equal(s.p50_response_time_ms, 2);
    assert.equal(s.p99_response_time_ms, 2);
    assert.equal(s.p50_queue_time_ms, 0.123);
    const slow = new ModelStats();
    slow.record(true, 1234.5678, 1);
    assert.equal(slow.summary().average_response_time, 1.235);
    assert.equal(slow.summary().p50_response_time_ms, 1234.568);
  });

  it('averages batch sizes and gives the share of padding among batched tokens', () => {
    const stats = new ModelStats();
    stats.recordBatch(4);
    stats.recordBatch(1);
    stats.recordBatch(2);
    stats.recordTokens(300, 100);
    stats.recordTokens(100, 0);
    stats.workerRestarts = 2;
    const s = stats.summary();
    assert.equal(s.batches, 3);
    assert.equal(s.average_batch_size, 2.333); // 7 / 3
    assert.equal(s.padding_ratio, 0.25); // 100 / 400
    assert.equal(s.worker_restarts, 2);
    assert.equal(stats.batchedItems, 7);
    assert.equal(stats.batchTokens, 400);
    assert.equal(stats.paddingTokens, 100);
  });

  it('gives copies: changing a summary does not change the stats', () => {
    const stats = new ModelStats();
    stats.record(false, 1, 1, 'TIMEOUT');
    const s = stats.summary() as { errors_by_code: Record<string, number>; by_source: any };
    s.errors_by_code.TIMEOUT = 99;
    s.by_source.api.requests = 99;
    const again = stats.summary() as { errors_by_code: Record<string, number>; by_source: any };
    assert.equal(again.errors_by_code.TIMEOUT, 1);
    assert.equal(again.by_source.api.requests, 1);
  });
});
