// The Agent API (/agent/...) through a real server on loopback: model choice from manifests,
// sequence-type detection, analysis with real model output, the batch limit, and every error shape.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, type Harness } from './helpers.js';

/** A tiny Node model with one task "classification" that says which model answered. */
function writeClassifier(modelsDir: string, name: string, types: string[], extra = ''): void {
  const dir = join(modelsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'model.yaml'),
    `name: ${name}\nversion: 2.0.0\ndescription: test classifier ${name}\nruntime: node\nentry: index.mjs\n` +
      `tasks:\n  - name: classification\n    sequence_types: [${types.join(', ')}]\n    max_length: 50\n${extra}`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export function predict(batch) {\n` +
      `  return batch.map((i) => i.sequence.startsWith('W') ? { error: { code: 'INVALID_SEQUENCE', message: 'no W first' } }\n` +
      `    : { label: i.sequence.length % 2 ? 'odd' : 'even', length: i.sequence.length, model: ${JSON.stringify(name)}, confidence: 0.5 });\n}\n`,
  );
}

function assertError(r: { status: number; body: any }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.success, false);
  assert.equal(typeof r.body.message, 'string');
  assert.ok(r.body.message.length > 0);
  assert.equal(r.body.error.code, code, JSON.stringify(r.body));
  assert.ok('details' in r.body.error);
  assert.equal(typeof r.body.request_id, 'string');
  assert.equal('result' in r.body, false);
}

const gc = (s: string): number => [...s].filter((c) => c === 'G' || c === 'C').length / s.length;
const revcomp = (s: string): string =>
  [...s]
    .reverse()
    .map((c) => ({ A: 'T', C: 'G', G: 'C', T: 'A' })[c])
    .join('');

describe('Agent API', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['gc-scanner', 'revcomp', 'dna-embed', 'broken-py'], { max_batch_sequences: 5 });
    // Three models share the task "classification": a generalist, a DNA specialist, and a
    // high-priority one that is not loaded at start.
    writeClassifier(h.modelsDir, 'agent-wide', ['DNA', 'RNA', 'protein']);
    writeClassifier(h.modelsDir, 'agent-narrow', ['DNA']);
    writeClassifier(
      h.modelsDir,
      'agent-vip',
      ['DNA', 'RNA'],
      'autoload: false\nmetadata:\n  agent_priority: { classification: 10 }\n',
    );
    const r = await h.post('/v1/models/reload', {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([...r.body.data.added].sort(), ['agent-narrow', 'agent-vip', 'agent-wide']);
  });
  after(async () => h.close());

  it('answers health, models, loaded models, tasks and sequence types', async () => {
    const health = await h.get('/agent/health');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'healthy', service: 'isomodel Agent API' });

    const models = await h.get('/agent/models');
    assert.deepEqual(models.body, {
      success: true,
      models: ['agent-narrow', 'agent-vip', 'agent-wide', 'broken-py', 'dna-embed', 'gc-scanner', 'revcomp'],
    });

    const loaded = await h.get('/agent/models/loaded');
    assert.deepEqual(loaded.body, {
      success: true,
      loaded_models: ['agent-narrow', 'agent-wide', 'dna-embed', 'gc-scanner', 'revcomp'],
    });

    const tasks = await h.get('/agent/tasks');
    assert.deepEqual(tasks.body, {
      success: true,
      tasks: ['classification', 'embedding', 'gc_content', 'motif_scan', 'nothing', 'reverse_complement'],
    });

    const types = await h.get('/agent/sequence-types');
    assert.deepEqual(types.body, { success: true, sequence_types: ['DNA', 'RNA', 'protein'] });
  });

  it('describes a model, and 404s an unknown one', async () => {
    const r = await h.get('/agent/model/gc-scanner/info');
    assert.equal(r.status, 200);
    assert.equal(r.body.success, true);
    const info = r.body.model_info;
    assert.equal(info.name, 'gc-scanner');
    assert.equal(info.version, '1.0.0');
    assert.match(info.description, /GC content/);
    assert.deepEqual(info.supported_tasks, ['gc_content', 'motif_scan']);
    assert.deepEqual(info.supported_sequences, ['DNA', 'RNA']);
    assert.equal(info.runtime, 'python');
    assert.equal(info.status, 'ready');
    assert.equal((await h.get('/agent/model/broken-py/info')).body.model_info.status, 'unloaded');
    assertError(await h.get('/agent/model/no-such-model/info'), 404, 'MODEL_NOT_FOUND');
  });

  it('chooses the best model from the manifests, case-insensitively on the sequence type', async () => {
    for (const sequence_type of ['DNA', 'dna', 'Rna']) {
      const r = await h.post('/agent/models/best', { task_type: 'reverse_complement', sequence_type });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.success, true);
      assert.equal(r.body.best_model, 'revcomp');
      assert.match(r.body.reason, /only model/);
      assert.deepEqual(
        r.body.candidates.map((c: any) => c.name),
        ['revcomp'],
      );
    }
    // Both ready; the DNA-only specialist beats the generalist; the unloaded one comes last
    // despite its priority.
    const dna = await h.post('/agent/models/best', { task_type: 'classification', sequence_type: 'DNA' });
    assert.equal(dna.body.best_model, 'agent-narrow');
    assert.match(dna.body.reason, /specialised/);
    assert.deepEqual(
      dna.body.candidates.map((c: any) => c.name),
      ['agent-narrow', 'agent-wide', 'agent-vip'],
    );
    assert.deepEqual(
      dna.body.candidates.map((c: any) => c.ready),
      [true, true, false],
    );
    assert.equal(dna.body.candidates[2].status, 'unloaded');
    assert.equal(dna.body.candidates[2].agent_priority, 10);
    // RNA: the ready generalist beats the unloaded high-priority model.
    const rna = await h.post('/agent/models/best', { task_type: 'classification', sequence_type: 'RNA' });
    assert.equal(rna.body.best_model, 'agent-wide');
    assert.match(rna.body.reason, /ready/);
    const protein = await h.post('/agent/models/best', { task_type: 'classification', sequence_type: 'protein' });
    assert.deepEqual(
      protein.body.candidates.map((c: any) => c.name),
      ['agent-wide'],
    );
    // No sequence type: every model with the task.
    const any = await h.post('/agent/models/best', { task_type: 'gc_content' });
    assert.equal(any.body.best_model, 'gc-scanner');
  });

  it('prefers a higher agent_priority once that model is loaded, and loads/unloads by name', async () => {
    const load = await h.post('/agent/model/agent-vip/load');
    assert.equal(load.status, 200, JSON.stringify(load.body));
    assert.equal(load.body.success, true);
    assert.match(load.body.message, /agent-vip/);
    try {
      const r = await h.post('/agent/models/best', { task_type: 'classification', sequence_type: 'DNA' });
      assert.equal(r.body.best_model, 'agent-vip');
      assert.match(r.body.reason, /agent_priority 10/);
      const a = await h.post('/agent/analyze', { sequences: ['ACGTA'], task_type: 'classification' });
      assert.equal(a.body.result.metadata.model_name, 'agent-vip');
      assert.equal(a.body.result.metadata.model_version, '2.0.0');
      assert.ok((await h.get('/agent/models/loaded')).body.loaded_models.includes('agent-vip'));
    } finally {
      const unload = await h.post('/agent/model/agent-vip/unload');
      assert.equal(unload.status, 200);
      assert.deepEqual(Object.keys(unload.body).sort(), ['message', 'success']);
      assert.equal(unload.body.success, true);
    }
    assert.equal(
      (await h.post('/agent/models/best', { task_type: 'classification', sequence_type: 'DNA' })).body.best_model,
      'agent-narrow',
    );
    assertError(await h.post('/agent/model/no-such-model/load'), 404, 'MODEL_NOT_FOUND');
    assertError(await h.post('/agent/model/no-such-model/unload'), 404, 'MODEL_NOT_FOUND');
    assertError(await h.post('/agent/model/broken-py/load'), 503, 'MODEL_NOT_LOADED');
  });

  it('rejects bad best-model requests and answers 404 when no model fits', async () => {
    assertError(await h.post('/agent/models/best', { sequence_type: 'DNA' }), 400, 'INVALID_REQUEST');
    assertError(await h.post('/agent/models/best', { task_type: 42 }), 400, 'INVALID_REQUEST');
    const unknown = await h.post('/agent/models/best', { task_type: 'folding', sequence_type: 'protein' });
    assertError(unknown, 400, 'INVALID_REQUEST');
    assert.match(unknown.body.message, /folding.*available: classification/);
    assertError(
      await h.post('/agent/models/best', { task_type: 'gc_content', sequence_type: 'peptide' }),
      400,
      'INVALID_REQUEST',
    );
    assertError(await h.post('/agent/models/best', { task_type: 'gc_content', extra: 1 }), 400, 'INVALID_REQUEST');
    assertError(await h.post('/agent/models/best', '[1]'), 400, 'INVALID_REQUEST');
    const none = await h.post('/agent/models/best', { task_type: 'reverse_complement', sequence_type: 'protein' });
    assertError(none, 404, 'MODEL_NOT_FOUND');
    assert.deepEqual(none.body.error.details.models_with_task, [{ model: 'revcomp', sequence_types: ['DNA', 'RNA'] }]);
  });

  it('analyses sequences with an automatically chosen model, in order', async () => {
    const seqs = ['GGGG', 'atat', 'GCATGC', 'ACGTACGTAA', 'CCCCA'];
    const stats = h.gw.registry.deployment('gc-scanner')!.stats;
    const before = { batches: stats.batches, requests: stats.totalRequests, items: stats.totalItems };
    const r = await h.post('/agent/analyze', { sequences: seqs, task_type: 'gc_content' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.success, true);
    const { predictions, metadata } = r.body.result;
    assert.equal(predictions.length, 5);
    predictions.forEach((p: any, i: number) => {
      const s = seqs[i]!.toUpperCase();
      assert.equal(p.sequence, s);
      assert.ok(Math.abs(p.gc_content - gc(s)) < 1e-12, `${s}: ${p.gc_content}`);
      assert.equal(p.length, s.length);
    });
    assert.equal(metadata.task_type, 'gc_content');
    assert.equal(metadata.sequence_type, 'DNA');
    assert.equal(metadata.model_name, 'gc-scanner');
    assert.equal(metadata.model_version, '1.0.0');
    assert.equal(metadata.sequence_count, 5);
    assert.equal(metadata.successful, 5);
    assert.equal(metadata.failed, 0);
    assert.equal(typeof metadata.processing_time, 'number');
    // One submission of the 5 sequences (max_batch_sequences is 5 here), recorded once.
    assert.deepEqual(
      { batches: stats.batches, requests: stats.totalRequests, items: stats.totalItems },
      { batches: before.batches + 1, requests: before.requests + 1, items: before.items + 5 },
    );
  });

  it('detects RNA and protein, and takes the declared type and a given model', async () => {
    const rna = await h.post('/agent/analyze', { sequences: ['ACGU', 'UUUU'], task_type: 'reverse_complement' });
    assert.equal(rna.status, 200, JSON.stringify(rna.body));
    assert.equal(rna.body.result.metadata.sequence_type, 'RNA');
    assert.deepEqual(
      rna.body.result.predictions.map((p: any) => p.reverse_complement),
      ['ACGU', 'AAAA'],
    );
    // "ACT" alone reads as DNA, but beside "PETER" (only protein) the request is protein.
    const prot = await h.post('/agent/analyze', { sequences: ['ACT', 'PETER'], task_type: 'classification' });
    assert.equal(prot.status, 200, JSON.stringify(prot.body));
    assert.equal(prot.body.result.metadata.sequence_type, 'protein');
    assert.equal(prot.body.result.metadata.model_name, 'agent-wide');
    // Declared type, any case; named model.
    const named = await h.post('/agent/analyze', {
      sequences: ['ATGCRYN', 'acgt'],
      task_type: 'reverse_complement',
      model_name: 'revcomp',
      sequence_type: 'dna',
    });
    assert.equal(named.status, 200, JSON.stringify(named.body));
    assert.deepEqual(
      named.body.result.predictions.map((p: any) => p.reverse_complement),
      ['NRYGCAT', revcomp('ACGT')],
    );
    assert.equal(named.body.result.metadata.model_name, 'revcomp');
    // Options reach the model; return_confidence false drops confidence.
    const opts = await h.post('/agent/analyze', {
      sequences: ['ACGTAC'],
      task_type: 'classification',
      model_name: 'agent-wide',
      options: { return_confidence: false },
    });
    assert.equal(opts.body.result.predictions[0].label, 'even');
    assert.equal('confidence' in opts.body.result.predictions[0], false);
    const emb = await h.post('/agent/analyze', {
      sequences: ['ACGTACGTAGCTAGCTAGGATCC'],
      task_type: 'embedding',
      options: { embedding_dimension: 16 },
    });
    assert.equal(emb.status, 200, JSON.stringify(emb.body));
    assert.equal(emb.body.result.predictions[0].embedding.length, 16);
    assert.equal(emb.body.result.metadata.model_name, 'dna-embed');
  });

  it('reports per-sequence failures beside successes, and fails the request when every sequence fails', async () => {
    const some = await h.post('/agent/analyze', {
      sequences: ['ACGT', 'WACG', 'ACG'],
      task_type: 'classification',
      model_name: 'agent-wide',
    });
    assert.equal(some.status, 200, JSON.stringify(some.body));
    assert.equal(some.body.result.metadata.failed, 1);
    assert.equal(some.body.result.metadata.successful, 2);
    assert.deepEqual(some.body.result.predictions[1], {
      sequence: 'WACG',
      error: { code: 'INVALID_SEQUENCE', message: 'no W first' },
    });
    const all = await h.post('/agent/analyze', {
      sequences: ['WACG', 'WTT', 'WGG'],
      task_type: 'classification',
      model_name: 'agent-wide',
    });
    assertError(all, 400, 'INVALID_SEQUENCE');
    assert.equal(all.body.error.details.errors.length, 3);
    const one = await h.post('/agent/analyze', { sequences: ['NNNN'], task_type: 'embedding' });
    assertError(one, 400, 'INVALID_SEQUENCE');
    assert.match(one.body.message, /k-mer/);
  });

  it('rejects missing or invalid sequences and tasks with 400, never success around an error', async () => {
    const cases: [unknown, number, string, RegExp?][] = [
      [{ task_type: 'gc_content' }, 400, 'INVALID_REQUEST', /sequences is required/],
      [{ sequences: [], task_type: 'gc_content' }, 400, 'INVALID_REQUEST', /at least one/],
      // max_batch_sequences (5 here), as on every batch-shaped surface (test/batch-limits.test.ts).
      [
        { sequences: Array(6).fill('ACGT'), task_type: 'gc_content' },
        400,
        'INVALID_REQUEST',
        /at most 5 sequences per request \(got 6/,
      ],
      [{ sequences: 'ACGT', task_type: 'gc_content' }, 400, 'INVALID_REQUEST', /array/],
      [{ sequences: ['ACGT', 7], task_type: 'gc_content' }, 400, 'INVALID_REQUEST', /sequences\[1\] must be a string/],
      [{ sequences: ['ACGT'] }, 400, 'INVALID_REQUEST', /task_type is required/],
      [{ sequences: ['ACGT'], task_type: 'folding' }, 400, 'INVALID_REQUEST', /unknown task_type/],
      [{ sequences: ['ACGT'], task_type: 'gc_content', sequence_type: 'peptide' }, 400, 'INVALID_REQUEST'],
      [{ sequences: ['ACGT'], task_type: 'gc_content', surprise: true }, 400, 'INVALID_REQUEST', /surprise/],
      [{ sequences: ['ACGT'], task_type: 'gc_content', options: [] }, 400, 'INVALID_REQUEST'],
      [{ sequences: ['ACGT', 'AC*T'], task_type: 'gc_content' }, 400, 'INVALID_SEQUENCE', /sequences\[1\].*'\*'/],
      [{ sequences: ['ACGT', 'ACGU'], task_type: 'gc_content' }, 400, 'INVALID_SEQUENCE', /different types/],
      [{ sequences: ['ACGT', ''], task_type: 'gc_content' }, 400, 'INVALID_SEQUENCE', /sequences\[1\] is empty/],
      [
        { sequences: ['ACGT', 'PETER'], task_type: 'gc_content', sequence_type: 'DNA' },
        400,
        'INVALID_SEQUENCE',
        /sequences\[1\]/,
      ],
      [
        { sequences: ['A'.repeat(51)], task_type: 'classification', model_name: 'agent-wide' },
        400,
        'SEQUENCE_TOO_LONG',
      ],
      [
        { sequences: ['PETER'], task_type: 'gc_content' },
        404,
        'MODEL_NOT_FOUND',
        /no model runs gc_content on protein/,
      ],
      [
        { sequences: ['ACGT'], task_type: 'gc_content', model_name: 'revcomp' },
        400,
        'INVALID_REQUEST',
        /no task "gc_content"/,
      ],
      [
        { sequences: ['PETER'], task_type: 'reverse_complement', model_name: 'revcomp' },
        400,
        'INVALID_SEQUENCE',
        /not protein/,
      ],
      [{ sequences: ['ACGT'], task_type: 'gc_content', model_name: 'no-such-model' }, 404, 'MODEL_NOT_FOUND'],
      [{ sequences: ['ACGT'], task_type: 'nothing' }, 503, 'MODEL_NOT_LOADED'],
      ['{"sequences": [', 400, 'INVALID_REQUEST'],
    ];
    for (const [body, status, code, message] of cases) {
      const r = await h.post('/agent/analyze', body);
      assertError(r, status, code);
      if (message) assert.match(r.body.message, message, JSON.stringify(body));
    }
    const idx = await h.post('/agent/analyze', {
      sequences: ['ACGT', 'ACGT', 'ACXT'],
      task_type: 'gc_content',
      sequence_type: 'DNA',
    });
    assert.equal(idx.body.error.details.index, 2);
    assert.equal(idx.body.error.details.position, 3);
  });

  it('answers unknown agent routes with the error envelope', async () => {
    assertError(await h.get('/agent/nope'), 404, 'NOT_FOUND');
  });
});
