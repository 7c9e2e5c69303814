// The jobs' output formats (src/jobs/formats.ts: exchange records, aggregates, CSV) and the
// counting of a job's model calls (src/jobs/counted.ts) with a stand-in executor and gateway,
// without a gateway or workers. jobs-api.test.ts and jobs-formats.test.ts check the same through
// a real gateway; these run in about a second, for `npm run mutate -- jobs-core`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { IsoError } from '../src/errors.js';
import { countedExecutor } from '../src/jobs/counted.js';
import {
  aggregateRecord,
  CsvWriter,
  errorRecord,
  exchangeRecord,
  OUTPUT_FORMATS,
  successRecord,
  toCsv,
  type OutputMetadata,
  type OutputRecord,
} from '../src/jobs/formats.js';
import type { ModelExecutor } from '../src/jobs/work.js';
import type { WorkItem } from '../src/worker/protocol.js';

const meta = (over: Partial<OutputMetadata> = {}): OutputMetadata => ({
  request_id: 'r0',
  processing_time_ms: 5,
  service: 'revcomp',
  version: '1.0',
  index: 0,
  ...over,
});

describe('job output records', () => {
  it('success and error records in the exchange shape', () => {
    assert.deepEqual([...OUTPUT_FORMATS], ['jsonl', 'csv']);
    assert.deepEqual(successRecord('t', { a: 1 }, meta()), {
      task: 't',
      status: 'success',
      output: { a: 1 },
      metadata: meta(),
    });
    assert.deepEqual(errorRecord('t', { code: 'X', message: 'm' }, meta()), {
      task: 't',
      status: 'error',
      error: { code: 'X', message: 'm' },
      metadata: meta(),
    });
    // A single-sequence exchange file: the record without the job index.
    assert.deepEqual(exchangeRecord(successRecord('t', { a: 1 }, meta({ index: 7 }))), {
      task: 't',
      status: 'success',
      output: { a: 1 },
      metadata: { request_id: 'r0', processing_time_ms: 5, service: 'revcomp', version: '1.0' },
    });
  });

  it('aggregates the records of one exchange input', () => {
    const ok1 = successRecord('t', { y: 1 }, meta({ request_id: 'a', processing_time_ms: 3 }));
    const ok2 = successRecord(
      't',
      { y: 2 },
      meta({ request_id: 'b', processing_time_ms: 9, service: 'other', version: '2' }),
    );
    const bad = errorRecord(
      't',
      { code: 'INVALID_SEQUENCE', message: 'no' },
      meta({ request_id: 'c', processing_time_ms: 4 }),
    );
    assert.deepEqual(aggregateRecord('t', 'req', [ok1, ok2]), {
      task: 't',
      status: 'success',
      output: {
        results: [
          { request_id: 'a', status: 'success', output: { y: 1 } },
          { request_id: 'b', status: 'success', output: { y: 2 } },
        ],
        total: 2,
        successful: 2,
        failed: 0,
      },
      metadata: { request_id: 'req', processing_time_ms: 9, service: 'revcomp', version: '1.0' },
    });
    assert.deepEqual(aggregateRecord('t', 'req', [ok1, bad]), {
      task: 't',
      status: 'error',
      output: {
        results: [
          { request_id: 'a', status: 'success', output: { y: 1 } },
          { request_id: 'c', status: 'error', error: { code: 'INVALID_SEQUENCE', message: 'no' } },
        ],
        total: 2,
        successful: 1,
        failed: 1,
      },
      error: { code: 'PARTIAL_FAILURE', message: '1 of 2 sequences failed' },
      metadata: { request_id: 'req', processing_time_ms: 4, service: 'revcomp', version: '1.0' },
    });
    const all = aggregateRecord('t', 'req', [bad, bad]);
    assert.equal(all.status, 'error');
    assert.deepEqual(all.error, { code: 'PREDICTION_FAILED', message: '2 of 2 sequences failed' });
    // No records at all: nothing failed, no service known, time 0.
    assert.deepEqual(aggregateRecord('t', 'req', []), {
      task: 't',
      status: 'success',
      output: { results: [], total: 0, successful: 0, failed: 0 },
      metadata: { request_id: 'req', processing_time_ms: 0, service: null, version: null },
    });
    // Negative times (clock steps) are not reported.
    assert.equal(
      (aggregateRecord('t', 'r', [successRecord('t', {}, meta({ processing_time_ms: -3 }))]).metadata as OutputMetadata)
        .processing_time_ms,
      0,
    );
    assert.equal(
      (aggregateRecord('t', 'r', [successRecord('t', {}, meta({ version: null }))]).metadata as OutputMetadata).version,
      null,
    );
  });
});

describe('job output as CSV', () => {
  it('fixed columns first, then the output fields in first-seen order (no duplicates)', () => {
    const recs: OutputRecord[] = [
      successRecord('t', { score: 0.5, label: 'x' }, meta()),
      successRecord('t', { label: 'y', extra: [1, 2], status: 'shadowed' }, meta({ index: 1 })),
      errorRecord('t', { code: 'E', message: 'm' }, meta({ index: 2 })),
    ];
    assert.deepEqual(CsvWriter.fieldsOf(recs), ['score', 'label', 'extra', 'status']);
    assert.deepEqual(CsvWriter.fieldsOf(recs, ['label', 'z']), ['label', 'z', 'score', 'extra', 'status']);
    const w = new CsvWriter(CsvWriter.fieldsOf(recs));
    assert.deepEqual(w.columns, [
      'index',
      'request_id',
      'task',
      'status',
      'service',
      'version',
      'processing_time_ms',
      'error_code',
      'error_message',
      'score',
      'label',
      'extra',
    ]);
    assert.equal(
      w.header(),
      'index,request_id,task,status,service,version,processing_time_ms,error_code,error_message,score,label,extra\n',
    );
    assert.equal(w.row(recs[0]!), '0,r0,t,success,revcomp,1.0,5,,,0.5,x,\n');
    // Nested values as JSON, quoted because of their commas and quotes; the fixed status column wins.
    assert.equal(w.row(recs[1]!), '1,r0,t,success,revcomp,1.0,5,,,,y,"[1,2]"\n');
    assert.equal(w.row(recs[2]!), '2,r0,t,error,revcomp,1.0,5,E,m,,,\n');
    assert.equal(toCsv(recs), w.header() + recs.map((r) => w.row(r)).join(''));
  });

  it('quotes cells with commas, quotes, CR or LF, and writes null, booleans and objects plainly', () => {
    const r = successRecord(
      't',
      {
        a: 'x,y',
        b: 'say "hi"',
        c: 'l1\nl2',
        d: 'cr\r',
        e: null,
        f: true,
        g: { k: 'v' },
        h: 'plain',
        i: undefined,
        j: 0,
      },
      meta({ version: null, request_id: 'q"1' }),
    );
    const w = new CsvWriter(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    assert.equal(
      w.row(r),
      '0,"q""1",t,success,revcomp,,5,,,"x,y","say ""hi""","l1\nl2","cr\r",,true,"{""k"":""v""}",plain,,0\n',
    );
    // Fields named like Object.prototype members are read from the output only.
    const proto = new CsvWriter(['constructor', 'toString', '__proto__']);
    assert.equal(proto.row(successRecord('t', { toString: 'own' }, meta())), '0,r0,t,success,revcomp,1.0,5,,,,own,\n');
    // Numbers as JavaScript writes them (JSON would turn NaN and Infinity into null).
    assert.equal(
      new CsvWriter(['n', 'i']).row(successRecord('t', { n: Number.NaN, i: -Infinity }, meta())),
      '0,r0,t,success,revcomp,1.0,5,,,NaN,-Infinity\n',
    );
    assert.equal(
      toCsv([]),
      'index,request_id,task,status,service,version,processing_time_ms,error_code,error_message\n',
    );
  });
});

describe("counted executor (jobs' model calls in the request stats)", () => {
  type Recorded = unknown[];
  function fakeGateway(known: Record<string, { name: string; version: string }>) {
    const stats: Recorded[] = [];
    const metrics: Recorded[] = [];
    const logs: Record<string, unknown>[] = [];
    const asked: string[] = [];
    const gw = {
      registry: {
        deployment: (id: string) => {
          asked.push(id);
          const d = known[id];
          return d ? { ...d, stats: { record: (...a: unknown[]) => stats.push(a) } } : undefined;
        },
      },
      metrics: { observeRequest: (...a: unknown[]) => metrics.push(a) },
      store: { logRequest: (row: Record<string, unknown>) => logs.push(row) },
    };
    return { gw: gw as unknown as Parameters<typeof countedExecutor>[1], stats, metrics, logs, asked };
  }
  const items = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ id: `i${i}`, sequence: 'ACGT' }) as unknown as WorkItem);
  const signal = () => new AbortController().signal;

  it('counts a successful call once, as a request of its records, against the version that served it', async () => {
    const f = fakeGateway({ 'm@2': { name: 'm', version: '2' } });
    const inner: ModelExecutor = {
      manifest: (m) => ({ name: m }) as never,
      submit: async () => ({ outputs: [], version: '2' }),
    };
    const ex = countedExecutor(inner, f.gw, 'job', 'j1');
    assert.deepEqual(ex.manifest('m'), { name: 'm' });
    const before = performance.now();
    assert.deepEqual(await ex.submit('m', { task: 'predict', items: items(3), signal: signal() }), {
      outputs: [],
      version: '2',
    });
    const took = performance.now() - before;
    assert.deepEqual(f.asked, ['m@2']);
    assert.equal(f.stats.length, 1);
    const [ok, ms, n, code, source] = f.stats[0]!;
    assert.deepEqual([ok, n, code, source], [true, 3, undefined, 'job']);
    // The call's own duration: no more than the time around it.
    assert.ok(typeof ms === 'number' && ms >= 0 && ms <= took, `${String(ms)} of ${took}`);
    assert.equal(f.metrics.length, 1);
    const [name, version, task, mok, mcode, secs, mn, msource] = f.metrics[0]!;
    assert.deepEqual([name, version, task, mok, mcode, mn, msource], ['m', '2', 'predict', true, 'OK', 3, 'job']);
    assert.ok(
      typeof secs === 'number' && secs >= 0 && secs < 60 && Math.abs((secs as number) * 1000 - (ms as number)) < 1e-6,
    );
    assert.equal(f.logs.length, 1);
    const { latency_ms, ...row } = f.logs[0]!;
    assert.deepEqual(row, {
      request_id: 'job:j1',
      model: 'm',
      version: '2',
      task: 'predict',
      route: 'job',
      status: 'success',
      error_code: undefined,
      sequences: 3,
      client: 'job',
    });
    assert.equal(latency_ms, ms);
  });

  it('a final failure of one record is counted with its code; unknown deployments are logged only', async () => {
    const f = fakeGateway({ m: { name: 'm', version: '1' } });
    const failing = (e: unknown): ModelExecutor => ({
      manifest: () => ({}) as never,
      submit: async () => Promise.reject(e),
    });
    const ex = countedExecutor(failing(new IsoError('PREDICTION_FAILED', 'boom')), f.gw, 'pipeline', 'p9');
    const before = performance.now();
    await assert.rejects(ex.submit('m', { task: 't', items: items(1), signal: signal() }), /boom/);
    const took = performance.now() - before;
    assert.deepEqual(f.asked, ['m']);
    const ms = f.stats[0]![1] as number;
    assert.ok(ms >= 0 && ms <= took, `${ms} of ${took}`);
    assert.deepEqual(
      f.stats[0]!.filter((_, i) => i !== 1),
      [false, 1, 'PREDICTION_FAILED', 'pipeline'],
    );
    assert.deepEqual(
      f.metrics[0]!.filter((_, i) => i !== 5),
      ['m', '1', 't', false, 'PREDICTION_FAILED', 1, 'pipeline'],
    );
    const { latency_ms: _l, ...row } = f.logs[0]!;
    assert.deepEqual(row, {
      request_id: 'pipeline:p9',
      model: 'm',
      version: '1',
      task: 't',
      route: 'pipeline',
      status: 'error',
      error_code: 'PREDICTION_FAILED',
      sequences: 1,
      client: 'pipeline',
    });
    // A non-IsoError is an internal error.
    const g = fakeGateway({});
    await assert.rejects(
      countedExecutor(failing(new Error('bug')), g.gw, 'job', 'j').submit('x', {
        task: 't',
        items: items(1),
        signal: signal(),
      }),
      /bug/,
    );
    assert.equal(g.stats.length, 0);
    assert.equal(g.metrics.length, 0);
    assert.equal(g.logs.length, 1);
    assert.equal(g.logs[0]!.error_code, 'INTERNAL_ERROR');
    assert.equal(g.logs[0]!.version, undefined);
  });

  it('calls the job will retry or split, cancellations and unknown models are not counted', async () => {
    const cases: [unknown, number, AbortSignal][] = [
      [new IsoError('QUEUE_FULL', 'busy'), 1, signal()],
      [new IsoError('MODEL_NOT_LOADED', 'loading'), 1, signal()],
      [new IsoError('RATE_LIMITED', 'slow down'), 1, signal()],
      [new IsoError('MODEL_NOT_FOUND', 'no such model'), 1, signal()],
      [new IsoError('PREDICTION_FAILED', 'whole batch'), 2, signal()],
      [Object.assign(new Error('aborted'), { name: 'AbortError' }), 1, signal()],
      [new IsoError('PREDICTION_FAILED', 'after cancel'), 1, AbortSignal.abort()],
    ];
    for (const [err, n, sig] of cases) {
      const f = fakeGateway({ m: { name: 'm', version: '1' } });
      const ex = countedExecutor(
        { manifest: () => ({}) as never, submit: async () => Promise.reject(err) },
        f.gw,
        'job',
        'j',
      );
      await assert.rejects(ex.submit('m', { task: 't', items: items(n), signal: sig }), (e: unknown) => e === err);
      assert.equal(f.logs.length, 0, String(err));
      assert.equal(f.stats.length, 0, String(err));
    }
    // A model that needs weights or packages will not get them by waiting: that failure is final.
    for (const status of ['needs_weights', 'needs_packages']) {
      const f = fakeGateway({ m: { name: 'm', version: '1' } });
      const err = new IsoError('MODEL_NOT_LOADED', 'needs', { status });
      await assert.rejects(
        countedExecutor(
          { manifest: () => ({}) as never, submit: async () => Promise.reject(err) },
          f.gw,
          'job',
          'j',
        ).submit('m', { task: 't', items: items(1), signal: signal() }),
      );
      assert.equal(f.logs.length, 1, status);
      assert.equal(f.logs[0]!.error_code, 'MODEL_NOT_LOADED');
    }
  });
});
