// Pipeline definitions and their execution over a scripted executor: field mapping, options
// from fields, which options reach which step, a failing step, and the shipped examples.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IsoError } from '../src/errors.js';
import { manifestSchema, type Manifest } from '../src/manifest/schema.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import type { WorkItem } from '../src/worker/protocol.js';
import { loadPipelineFile, parsePipeline, processPipelineChunk, resolveSteps } from '../src/jobs/pipeline.js';
import type { ModelExecutor } from '../src/jobs/work.js';
import { discoverPackages } from '../src/manifest/load.js';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';

const manifests: Record<string, Manifest> = {
  design: manifestSchema.parse({
    name: 'design',
    version: '1.1.0',
    runtime: 'node',
    entry: 'x.mjs',
    tasks: [
      { name: 'optimize', sequence_types: ['DNA', 'protein'], options: { organism: { type: 'string' } } },
      { name: 'score', sequence_types: ['DNA'], options: { organism: { type: 'string' } } },
    ],
  }),
  props: manifestSchema.parse({
    name: 'props',
    version: '3.0.0',
    runtime: 'node',
    entry: 'x.mjs',
    tasks: [{ name: 'props', sequence_types: ['protein'], options: { ph: { type: 'number' } } }],
  }),
};

const calls: { model: string; task: string; items: WorkItem[] }[] = [];
const executor: ModelExecutor = {
  manifest(model) {
    const m = manifests[model];
    if (!m) throw new IsoError('MODEL_NOT_FOUND', `no model named "${model}"`);
    return m;
  },
  async submit(model, req) {
    calls.push({ model, task: req.task, items: req.items });
    const outputs = req.items.map((item) => {
      const i = { ...item, sequence: item.sequence ?? '' };
      if (req.task === 'optimize') {
        if (i.sequence.includes('W')) return { error: { code: 'INVALID_SEQUENCE', message: 'no W today' } };
        return {
          sequence: 'ATGAAA' + 'TAA',
          protein: i.sequence.replace(/[^A-Z]/g, '') + '*KK',
          organism: i.options.organism ?? 'default',
        };
      }
      if (req.task === 'score') return { cai: 1, organism: i.options.organism, seen: i.sequence };
      return { length: i.sequence.length, seen: i.sequence, options: i.options };
    });
    return { outputs, version: manifests[model]!.version };
  },
};

const yamlLike = {
  name: 'demo',
  version: 2,
  steps: [
    { name: 'opt', model: 'design', task: 'optimize', options: { organism: 'ecoli' } },
    {
      name: 'cai',
      model: 'design',
      task: 'score',
      sequence: 'opt.sequence',
      options_from: { organism: 'opt.organism' },
    },
    { name: 'p', model: 'props', sequence: { from: 'opt.protein', until_stop: true } },
  ],
};

describe('pipelines', () => {
  it('parses a definition: defaults, step names, references to earlier steps only', () => {
    const def = parsePipeline({
      steps: [
        { model: 'design', task: 'optimize' },
        { model: 'design', task: 'score' },
      ],
    });
    assert.equal(def.name, 'pipeline');
    assert.deepEqual(
      def.steps.map((s) => [s.name, s.sequence.from.join('.')]),
      [
        ['step1', 'input.sequence'],
        ['step2', 'step1.sequence'],
      ],
    );
    assert.throws(
      () =>
        parsePipeline({
          steps: [
            { model: 'a', sequence: 'later.sequence' },
            { name: 'later', model: 'b' },
          ],
        }),
      /must start with input or an earlier step/,
    );
    assert.throws(
      () =>
        parsePipeline({
          steps: [
            { name: 'x', model: 'a' },
            { name: 'x', model: 'b' },
          ],
        }),
      /used twice/,
    );
    assert.throws(() => parsePipeline({ steps: [{ name: 'input', model: 'a' }] }), /reserved/);
    assert.throws(() => parsePipeline({ steps: [] }), /invalid pipeline: steps/);
    assert.throws(() => parsePipeline({ steps: [{ model: 'a', bogus: 1 }] }), /Unrecognized key/);
    assert.throws(
      () => resolveSteps(parsePipeline({ steps: [{ model: 'design', task: 'nope' }] }), executor.manifest),
      /step step1: model design has no task "nope"/,
    );
  });

  it('chains steps: mapped sequences, options from fields, until_stop, per-step metadata', async () => {
    calls.length = 0;
    const chunk = [
      { index: 0, input: { id: 'a', sequence: 'MKV', organism: 'human' } },
      { index: 1, input: { id: 'b', sequence: 'MWV' } },
      { index: 2, input: { id: 'c', sequence: 'MK!' } },
    ];
    const recs = await processPipelineChunk(
      { kind: 'pipeline', pipeline: yamlLike as never, options: { ph: 6 } },
      chunk,
      { executor, signal: new AbortController().signal, maxWaitMs: 1000 },
    );
    const [a, b, c] = recs;
    assert.equal(a!.status, 'success');
    assert.equal(a!.task, 'pipeline:demo');
    assert.equal(a!.metadata.service, 'pipeline:demo');
    assert.equal(a!.metadata.version, '2');
    // The record's organism beats the step's default; cai takes it from the optimize output.
    assert.equal((a!.output!.opt as any).organism, 'human');
    assert.equal((a!.output!.cai as any).organism, 'human');
    assert.equal((a!.output!.cai as any).seen, 'ATGAAATAA');
    // until_stop: the translation is cut at its first "*".
    assert.equal((a!.output!.p as any).seen, 'MKV');
    // The job's ph reaches only the step whose task declares it; organism never reaches props.
    assert.deepEqual((a!.output!.p as any).options, { ph: 6 });
    assert.deepEqual(
      (a!.metadata.steps as any[]).map((s) => [s.step, s.model, s.task, s.version, s.status]),
      [
        ['opt', 'design', 'optimize', '1.1.0', 'success'],
        ['cai', 'design', 'score', '1.1.0', 'success'],
        ['p', 'props', 'props', '3.0.0', 'success'],
      ],
    );
    // A failing step stops that record only, with the step named.
    assert.equal(b!.status, 'error');
    assert.deepEqual([b!.error!.code, b!.error!.step], ['INVALID_SEQUENCE', 'opt']);
    assert.equal((b!.metadata.steps as any[]).length, 1);
    assert.equal(c!.status, 'error');
    assert.equal(c!.error!.code, 'INVALID_SEQUENCE');
    // One batch call per step, carrying only the records still alive.
    assert.deepEqual(
      calls.map((x) => [x.task, x.items.length]),
      [
        ['optimize', 2],
        ['score', 1],
        ['props', 1],
      ],
    );
    assert.equal(calls[0]!.items[1]!.options.organism, 'ecoli');
  });

  it('names a missing field of an earlier output as the error of that record', async () => {
    const p = {
      name: 'm',
      steps: [
        { name: 'opt', model: 'design', task: 'optimize' },
        { model: 'props', sequence: 'opt.nothing' },
      ],
    };
    const [r] = await processPipelineChunk(
      { kind: 'pipeline', pipeline: p as never, options: {} },
      [{ index: 0, input: { id: 'a', sequence: 'MKV' } }],
      { executor, signal: new AbortController().signal, maxWaitMs: 1000 },
    );
    assert.equal(r!.status, 'error');
    assert.match(r!.error!.message, /field opt\.nothing is missing/);
    assert.equal(r!.error!.step, 'step2');
    assert.ok((r!.error!.outputs as any).opt, 'the completed steps are kept');
  });

  it('keeps every step output whatever the step is called: constructor, toString; __proto__ is refused', async () => {
    // Before, outputs lived in a plain object: a step named __proto__ set its prototype and its
    // output vanished from the record without a word.
    const p = {
      name: 'names',
      steps: [
        { name: 'constructor', model: 'design', task: 'optimize' },
        {
          name: 'toString',
          model: 'design',
          task: 'score',
          sequence: 'constructor.sequence',
          options_from: { organism: 'constructor.organism' },
        },
        { name: 'hasOwnProperty', model: 'props', sequence: { from: 'constructor.protein', until_stop: true } },
      ],
    };
    const [r] = await processPipelineChunk(
      { kind: 'pipeline', pipeline: p as never, options: {} },
      [{ index: 0, input: { id: 'a', sequence: 'MKV', organism: 'yeast' } }],
      {
        executor,
        signal: new AbortController().signal,
        maxWaitMs: 1000,
      },
    );
    assert.equal(r!.status, 'success', JSON.stringify(r));
    assert.deepEqual(Object.keys(r!.output!), ['constructor', 'toString', 'hasOwnProperty']);
    assert.equal((r!.output!.constructor as any).organism, 'yeast');
    assert.equal((r!.output!.toString as any).seen, 'ATGAAATAA');
    assert.equal((r!.output!.toString as any).organism, 'yeast');
    assert.equal((r!.output!.hasOwnProperty as any).seen, 'MKV');
    assert.deepEqual(JSON.parse(JSON.stringify(r!.output)).toString.cai, 1);
    for (const name of ['__proto__']) {
      assert.throws(
        () => parsePipeline({ steps: [{ name, model: 'design', task: 'optimize' }] }),
        /invalid pipeline: steps\.0\.name: "__proto__" is reserved/,
      );
    }
  });

  it('reads field paths through own properties only: a path never reaches a prototype', async () => {
    const p = { steps: [{ model: 'props', sequence: 'input.parameters.constructor' }] };
    const [r] = await processPipelineChunk(
      { kind: 'pipeline', pipeline: p as never, options: {} },
      [{ index: 0, input: { id: 'a', sequence: 'MKV' } }],
      { executor, signal: new AbortController().signal, maxWaitMs: 1000 },
    );
    assert.equal(r!.status, 'error');
    assert.match(r!.error!.message, /field input\.parameters\.constructor is missing/);
  });

  it('ships example pipelines that are valid against the built-in models', () => {
    const found = discoverPackages(BUILTIN_MODELS_DIR);
    const byName = new Map(found.packages.map((p) => [p.manifest.name, p.manifest]));
    for (const f of ['codon-design.yaml', 'revcomp-gc.yaml', 'generate-optimize-verify.yaml']) {
      const def = parsePipeline(loadPipelineFile(join(PACKAGE_ROOT, 'examples', 'pipelines', f)));
      const steps = resolveSteps(def, (m) => {
        const man = byName.get(m);
        if (!man) throw new Error(`no built-in model ${m}`);
        return man;
      });
      assert.ok(steps.length >= 2, f);
    }
  });
});
