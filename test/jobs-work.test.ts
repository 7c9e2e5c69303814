// The job engine against a scripted executor: waiting out overload, isolating a sequence that
// fails its whole batch, per-record validation and options, bounded concurrency, fatal errors.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsoError } from '../src/errors.js';
import { manifestSchema, type Manifest } from '../src/manifest/schema.js';
import type { ItemOutput, WorkItem } from '../src/worker/protocol.js';
import {
  chunked,
  JobFatalError,
  processPredictChunk,
  runChunks,
  type JobItem,
  type ModelExecutor,
} from '../src/jobs/work.js';
import type { OutputRecord } from '../src/jobs/formats.js';

function manifest(
  name: string,
  tasks: { name: string; sequence_types: string[]; options?: Record<string, unknown> }[],
): Manifest {
  return manifestSchema.parse({ name, version: '2.0.0', runtime: 'node', entry: 'x.mjs', tasks });
}

interface Call {
  task: string;
  items: WorkItem[];
}

/** An executor whose submit is scripted per call. */
function fakeExecutor(
  m: Manifest,
  answer: (call: Call, n: number) => ItemOutput[] | Promise<ItemOutput[]>,
): ModelExecutor & { calls: Call[]; maxConcurrent: number } {
  let active = 0;
  const ex = {
    calls: [] as Call[],
    maxConcurrent: 0,
    manifest(model: string): Manifest {
      if (model !== m.name) throw new IsoError('MODEL_NOT_FOUND', `no model named "${model}"`);
      return m;
    },
    async submit(_model: string, req: { task: string; items: WorkItem[] }) {
      const call = { task: req.task, items: req.items };
      ex.calls.push(call);
      active++;
      ex.maxConcurrent = Math.max(ex.maxConcurrent, active);
      try {
        await new Promise((r) => setTimeout(r, 2));
        return { outputs: await answer(call, ex.calls.length), version: m.version };
      } finally {
        active--;
      }
    },
  };
  return ex;
}

const items = (seqs: unknown[]): JobItem[] =>
  seqs.map((sequence, index) => ({ index, input: { id: `s${index}`, sequence } }));
const ctx = (executor: ModelExecutor) => ({ executor, signal: new AbortController().signal, maxWaitMs: 5000 });
const echo = (c: Call): ItemOutput[] => c.items.map((i) => ({ seq: i.sequence, options: i.options }));

describe('job engine', () => {
  const m = manifest('m', [
    { name: 'a', sequence_types: ['DNA'] },
    { name: 'b', sequence_types: ['protein'] },
  ]);

  it('validates each record alone, groups by task, merges options (job < organism < parameters)', async () => {
    const ex = fakeExecutor(m, echo);
    const chunk: JobItem[] = [
      { index: 10, input: { id: 'x', sequence: 'acgt' } },
      { index: 11, input: { id: 'y', sequence: 'ACJT' } },
      {
        index: 12,
        input: { id: 'z', sequence: 'MKV', task: 'b', organism: 'human', parameters: { k: 2, organism: 'yeast' } },
      },
      { index: 13, input: { id: 'w', sequence: 42 } },
      { index: 14, input: { id: 'v', sequence: 'AC', task: 'nope' } },
    ];
    const recs = await processPredictChunk(
      { kind: 'predict', model: 'm', task: 'a', options: { k: 1, organism: 'ecoli' } },
      chunk,
      ctx(ex),
    );
    assert.deepEqual(
      recs.map((r) => [r.metadata.index, r.metadata.request_id, r.status, r.task, r.error?.code]),
      [
        [10, 'x', 'success', 'a', undefined],
        [11, 'y', 'error', 'a', 'INVALID_SEQUENCE'],
        [12, 'z', 'success', 'b', undefined],
        [13, 'w', 'error', 'a', 'INVALID_REQUEST'],
        [14, 'v', 'error', 'nope', 'INVALID_REQUEST'],
      ],
    );
    assert.equal(recs[0]!.output!.seq, 'ACGT');
    assert.deepEqual(recs[0]!.output!.options, { k: 1, organism: 'ecoli' });
    assert.deepEqual(recs[2]!.output!.options, { k: 2, organism: 'yeast' });
    assert.equal(recs[0]!.metadata.service, 'm');
    assert.equal(recs[0]!.metadata.version, '2.0.0');
    assert.deepEqual(
      ex.calls.map((c) => [c.task, c.items.length]),
      [
        ['a', 1],
        ['b', 1],
      ],
    );
  });

  it('waits out QUEUE_FULL and a loading model, then succeeds', async () => {
    const ex = fakeExecutor(m, (c, n) => {
      if (n === 1) throw new IsoError('QUEUE_FULL', 'full', undefined, 1);
      if (n === 2) throw new IsoError('MODEL_NOT_LOADED', 'loading', undefined, 0);
      return echo(c);
    });
    const recs = await processPredictChunk(
      { kind: 'predict', model: 'm', task: 'a', options: {} },
      items(['AC', 'GT']),
      ctx(ex),
    );
    assert.deepEqual(
      recs.map((r) => r.status),
      ['success', 'success'],
    );
    assert.equal(ex.calls.length, 3);
  });

  it('fails the job (not a record) when a model stays unavailable past the wait limit', async () => {
    const ex = fakeExecutor(m, () => {
      throw new IsoError('MODEL_NOT_LOADED', 'model m failed to load: boom');
    });
    await assert.rejects(
      processPredictChunk({ kind: 'predict', model: 'm', task: 'a', options: {} }, items(['AC']), {
        ...ctx(ex),
        maxWaitMs: 50,
      }),
      JobFatalError,
    );
    await assert.rejects(
      processPredictChunk({ kind: 'predict', model: 'other', task: 'a', options: {} }, items(['AC']), ctx(ex)),
      JobFatalError,
    );
  });

  it('splits a batch that crashes as a whole until only the poisonous sequence fails', async () => {
    // Any batch holding GGGG "crashes the worker"; everything else answers.
    const ex = fakeExecutor(m, (c) => {
      if (c.items.some((i) => i.sequence === 'GGGG'))
        throw new IsoError('PREDICTION_FAILED', 'model worker exited with code 3; it will be restarted');
      return echo(c);
    });
    const seqs = ['AA', 'CC', 'TT', 'GGGG', 'AC', 'GT', 'CA', 'TG'];
    const recs = await processPredictChunk(
      { kind: 'predict', model: 'm', task: 'a', options: {} },
      items(seqs),
      ctx(ex),
    );
    assert.deepEqual(
      recs.map((r) => r.status),
      seqs.map((s) => (s === 'GGGG' ? 'error' : 'success')),
    );
    assert.equal(recs[3]!.error!.code, 'PREDICTION_FAILED');
    assert.match(recs[3]!.error!.message, /exited/);
    assert.deepEqual(
      recs.map((r) => r.output?.seq ?? null),
      seqs.map((s) => (s === 'GGGG' ? null : s)),
    );
    assert.ok(ex.calls.length <= 1 + 2 * Math.ceil(Math.log2(seqs.length)) + 2, `${ex.calls.length} calls`);
  });

  it('runs chunks with bounded concurrency and commits every record once', async () => {
    const ex = fakeExecutor(m, echo);
    const all = items(Array.from({ length: 100 }, (_, i) => 'ACGT'.slice(0, 1 + (i % 4))));
    const seen: OutputRecord[] = [];
    await runChunks({
      chunks: chunked(all, 7),
      concurrency: 3,
      process: (c, signal) =>
        processPredictChunk({ kind: 'predict', model: 'm', task: 'a', options: {} }, c, {
          executor: ex,
          signal,
          maxWaitMs: 1000,
        }),
      commit: (_c, recs) => seen.push(...recs),
      signal: new AbortController().signal,
    });
    assert.equal(ex.maxConcurrent, 3);
    assert.equal(ex.calls.length, Math.ceil(100 / 7));
    assert.deepEqual(
      seen.map((r) => r.metadata.index).sort((a, b) => a - b),
      all.map((i) => i.index),
    );
  });

  it('stops at the first fatal error and at an abort', async () => {
    const ex = fakeExecutor(m, echo);
    let n = 0;
    await assert.rejects(
      runChunks({
        chunks: chunked(items(Array.from({ length: 50 }, () => 'A')), 5),
        concurrency: 2,
        process: async (c) => {
          if (++n === 3) throw new JobFatalError('MODEL_NOT_FOUND', 'gone');
          return processPredictChunk({ kind: 'predict', model: 'm', task: 'a', options: {} }, c, ctx(ex));
        },
        commit: () => undefined,
        signal: new AbortController().signal,
      }),
      /gone/,
    );
    assert.ok(n < 10);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      runChunks({
        chunks: chunked(items(['A']), 1),
        concurrency: 1,
        process: async () => [],
        commit: () => undefined,
        signal: ac.signal,
      }),
      { name: 'AbortError' },
    );
  });
});
