// Open Inference Protocol v2 (/v2/...) through a real server on loopback. Every response is
// validated against the schemas of the protocol's OpenAPI document (open_inference_rest_v2.yaml,
// $refs to #/components/schemas resolved by ajv); every route of the document is called, plus
// the unversioned and model-repository routes, errors included; inference numbers are checked
// against independent computations and the native API.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import AjvModule from 'ajv';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness, type Res } from './helpers.js';

const SPEC_FILE = 'open_inference_rest_v2.yaml';
const SPEC_CANDIDATES = [
  process.env.ISOMODEL_OIP_SPEC,
  join(PACKAGE_ROOT, 'test', 'fixtures', SPEC_FILE),
  join(PACKAGE_ROOT, 'docs', 'spec', SPEC_FILE),
  join(PACKAGE_ROOT, 'shared', 'spec', SPEC_FILE),
  join(PACKAGE_ROOT, '..', 'shared', 'spec', SPEC_FILE),
].filter((p): p is string => typeof p === 'string');

function loadSpec(): any {
  const file = SPEC_CANDIDATES.find((p) => existsSync(p));
  if (!file)
    throw new Error(
      `the Open Inference Protocol document ${SPEC_FILE} was not found; looked in: ${SPEC_CANDIDATES.join(', ')} (or set ISOMODEL_OIP_SPEC)`,
    );
  return parse(readFileSync(file, 'utf8'));
}

const spec = loadSpec();
const Ajv = AjvModule.default;
// strict: false because OpenAPI schemas carry annotations JSON Schema does not know (x-examples).
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema({ $id: 'oip', components: spec.components });

/** Compiles a schema of the document, its local $refs pointed at the document's components. */
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorFor(schema: unknown): ReturnType<typeof ajv.compile> {
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    const rewrite = (s: unknown): unknown =>
      Array.isArray(s)
        ? s.map(rewrite)
        : typeof s === 'object' && s !== null
          ? Object.fromEntries(
              Object.entries(s).map(([k, x]) => [
                k,
                k === '$ref' && typeof x === 'string' && x.startsWith('#/') ? `oip${x}` : rewrite(x),
              ]),
            )
          : s;
    v = ajv.compile(rewrite(schema) as object);
    compiled.set(key, v);
  }
  return v;
}

function assertValid(schema: unknown, body: unknown, what: string): void {
  const v = validatorFor(schema);
  assert.ok(
    v(body),
    `${what} does not match ${JSON.stringify(schema)}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(body).slice(0, 2000)}`,
  );
}

const component = (name: string): unknown => {
  assert.ok(spec.components.schemas[name], `schema ${name} is in the document`);
  return { $ref: `#/components/schemas/${name}` };
};

/** Checks a response against the document: its status is documented, and its body matches the schema given for it. */
function assertDocumented(template: string, method: 'get' | 'post', r: Res<any>): void {
  const op = spec.paths[template]?.[method];
  assert.ok(op, `${method.toUpperCase()} ${template} is in the document`);
  const documented = op.responses[String(r.status)];
  assert.ok(
    documented,
    `${method.toUpperCase()} ${template} answered ${r.status}, which the document does not list: ${JSON.stringify(r.body)}`,
  );
  const schema = documented.content?.['application/json']?.schema;
  if (schema) assertValid(schema, r.body, `${method.toUpperCase()} ${template} ${r.status}`);
}

/** An error in the protocol's shape {error: string}, nothing else, validated against a document error schema. */
function assertError(r: Res<any>, status: number, schema = 'inference_error_response', message?: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assertValid(component(schema), r.body, `error ${status}`);
  assert.deepEqual(Object.keys(r.body), ['error']);
  assert.ok(r.body.error.length > 0);
  if (message) assert.match(r.body.error, message);
}

/** The model repository extension's index (the document does not define it): a list of {name, version, state, reason}. */
const repositoryIndexSchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      state: { type: 'string', enum: ['READY', 'LOADING', 'UNAVAILABLE', 'UNLOADING'] },
      reason: { type: 'string' },
    },
    required: ['name', 'state'],
  },
};

function inferRequest(
  sequences: unknown[],
  parameters?: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    inputs: [{ name: 'sequences', shape: [sequences.length], datatype: 'BYTES', data: sequences }],
    ...extra,
  };
  if (parameters) body.parameters = parameters;
  return body;
}

/** Posts an inference request that must itself be valid against the document's inference_request. */
async function infer(
  h: Harness,
  path: string,
  body: Record<string, unknown>,
  headers?: Record<string, string>,
): Promise<Res<any>> {
  assertValid(component('inference_request'), body, 'request');
  return h.post(path, body, headers);
}

function output(
  r: Res<any>,
  name: string,
): { name: string; datatype: string; shape: number[]; data: any[]; parameters?: any } {
  const t = r.body.outputs.find((o: any) => o.name === name);
  assert.ok(t, `output ${name} in ${JSON.stringify(r.body.outputs.map((o: any) => o.name))}`);
  assert.equal(
    t.data.length,
    t.shape.reduce((a: number, b: number) => a * b, 1),
    `${name}: data length matches shape`,
  );
  return t;
}

const gcFraction = (s: string): number =>
  [...s].filter((c) => c === 'G' || c === 'C').length / [...s].filter((c) => 'ACGTU'.includes(c)).length;
const revcomp = (s: string): string =>
  [...s]
    .reverse()
    .map((c) => ({ A: 'T', C: 'G', G: 'C', T: 'A' })[c])
    .join('');
const PKG_VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

describe('Open Inference Protocol v2', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp', 'gc-scanner', 'dna-embed', 'broken-py'], { max_batch_sequences: 7 });
  });
  after(async () => h.close());

  it('validates with the document: its schemas reject what they should', () => {
    const check = (name: string, body: unknown): boolean => validatorFor(component(name))(body) as boolean;
    assert.equal(check('metadata_model_error_response', { message: 'x' }), false);
    assert.equal(check('inference_error_response', { error: 1 }), false);
    assert.equal(check('metadata_model_response', { name: 'm' }), false);
    assert.equal(
      check('metadata_model_response', { name: 'm', platform: 'p', inputs: [{ name: 'x', datatype: 'BYTES' }] }),
      false,
    );
    assert.equal(
      check('inference_response', {
        model_name: 'm',
        outputs: [{ name: 'o', shape: [1], datatype: 'FP64', data: [{}] }],
      }),
      false,
    );
    assert.equal(
      check('inference_response', {
        model_name: 'm',
        outputs: [{ name: 'o', shape: [1, 1], datatype: 'FP64', data: [[1]] }],
      }),
      true,
    );
    assert.equal(check('metadata_server_response', { name: 'isomodel', version: '1' }), false);
  });

  it('answers every route of the document with a response valid against its schema', async () => {
    const called: string[] = [];
    for (const [template, item] of Object.entries<any>(spec.paths)) {
      for (const method of ['get', 'post'] as const) {
        const op = item[method];
        if (!op) continue;
        const url = template.replace('${MODEL_NAME}', 'revcomp').replace('${MODEL_VERSION}', '1.0.0');
        let r: Res<any>;
        if (method === 'post') {
          const body = inferRequest(['ACGTTG']);
          assertValid(op.requestBody.content['application/json'].schema, body, `${template} request`);
          r = await h.post(url, body);
        } else r = await h.get(url);
        assert.equal(r.status, 200, `${method} ${url}: ${JSON.stringify(r.body)}`);
        assertDocumented(template, method, r);
        called.push(`${method} ${template}`);
      }
    }
    assert.equal(
      called.length,
      Object.values<any>(spec.paths).reduce((n, item) => n + ['get', 'post'].filter((m) => item[m]).length, 0),
    );
    assert.ok(called.length >= 6, called.join(', '));
  });

  it('serves server metadata at /v2 and /v2/', async () => {
    for (const path of ['/v2', '/v2/']) {
      const r = await h.get(path);
      assert.equal(r.status, 200);
      assertDocumented('/v2/', 'get', r);
      assert.equal(r.body.name, 'isomodel');
      assert.equal(r.body.version, PKG_VERSION);
      assert.ok(r.body.extensions.includes('model_repository'));
    }
  });

  it('answers liveness and readiness probes', async () => {
    const live = await h.get('/v2/health/live');
    assert.equal(live.status, 200);
    assertDocumented('/v2/health/live', 'get', live);
    const ready = await h.get('/v2/health/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assertDocumented('/v2/health/ready', 'get', ready);
  });

  it('describes models, with and without a version', async () => {
    for (const path of ['/v2/models/revcomp', '/v2/models/revcomp/versions/1.0.0']) {
      const r = await h.get(path);
      assert.equal(r.status, 200);
      assertValid(component('metadata_model_response'), r.body, path);
      assert.equal(r.body.name, 'revcomp');
      assert.deepEqual(r.body.versions, ['1.0.0']);
      assert.equal(r.body.platform, 'isomodel-node');
      assert.deepEqual(r.body.inputs, [{ name: 'sequences', datatype: 'BYTES', shape: [-1] }]);
      assert.deepEqual(
        r.body.outputs.map((o: any) => [o.name, o.datatype, o.shape]),
        [
          ['reverse_complement', 'BYTES', [-1]],
          ['length', 'FP64', [-1]],
          ['gc_content', 'FP64', [-1]],
        ],
      );
    }
    const gc = await h.get('/v2/models/gc-scanner');
    assertValid(component('metadata_model_response'), gc.body, 'gc-scanner');
    assert.equal(gc.body.platform, 'isomodel-python');
    assert.deepEqual(gc.body.parameters.task_types, ['gc_content', 'motif_scan']);
    const counts = gc.body.outputs.find((o: any) => o.name === 'counts');
    assert.deepEqual([counts.datatype, counts.shape, counts.parameters.task_types], ['BYTES', [-1], ['gc_content']]);
    const embed = await h.get('/v2/models/dna-embed/versions/1.0.0');
    assertValid(component('metadata_model_response'), embed.body, 'dna-embed');
    const e = embed.body.outputs.find((o: any) => o.name === 'embedding');
    assert.deepEqual([e.datatype, e.shape], ['FP32', [-1, -1]]);
  });

  it('reports model readiness, with and without a version', async () => {
    for (const path of ['/v2/models/revcomp/ready', '/v2/models/revcomp/versions/1.0.0/ready']) {
      const r = await h.get(path);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assertDocumented('/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/ready', 'get', r);
    }
    // A known model that is not loaded is not ready: a 4xx, in the protocol's error shape.
    assertError(
      await h.get('/v2/models/broken-py/ready'),
      400,
      'metadata_model_error_response',
      /broken-py is unloaded/,
    );
  });

  it('answers unknown models and versions with 404 errors on every model route', async () => {
    const gets = [
      '/v2/models/nope',
      '/v2/models/nope/versions/1',
      '/v2/models/nope/ready',
      '/v2/models/nope/versions/1/ready',
    ];
    for (const path of gets) assertError(await h.get(path), 404, 'metadata_model_error_response', /nope/);
    for (const path of ['/v2/models/revcomp/versions/2.0.0', '/v2/models/revcomp/versions/2.0.0/ready']) {
      assertError(
        await h.get(path),
        404,
        'metadata_model_error_response',
        /no version "2\.0\.0"; available versions: 1\.0\.0/,
      );
    }
    for (const path of ['/v2/models/nope/infer', '/v2/models/nope/versions/1/infer'])
      assertError(await infer(h, path, inferRequest(['ACGT'])), 404, 'inference_error_response', /nope/);
    assertError(
      await infer(h, '/v2/models/revcomp/versions/9/infer', inferRequest(['ACGT'])),
      404,
      'inference_error_response',
      /no version "9"/,
    );
    assertError(await h.get('/v2/no/such/route'), 404, 'metadata_server_error_response');
  });

  it('infers strings and numbers with revcomp, echoing the request id', async () => {
    const r = await infer(
      h,
      '/v2/models/revcomp/infer',
      inferRequest(['ATGCRYN', 'acgu', 'GGGATC'], undefined, { id: '42' }),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assertDocumented('/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/infer', 'post', r);
    assert.equal(r.body.model_name, 'revcomp');
    assert.equal(r.body.model_version, '1.0.0');
    assert.equal(r.body.id, '42');
    assert.equal(r.body.parameters.task_type, 'reverse_complement');
    const rc = output(r, 'reverse_complement');
    assert.deepEqual([rc.datatype, rc.shape, rc.data], ['BYTES', [3], ['NRYGCAT', 'ACGU', revcomp('GGGATC')]]);
    const len = output(r, 'length');
    assert.deepEqual([len.datatype, len.shape, len.data], ['FP64', [3], [7, 4, 6]]);
    const gc = output(r, 'gc_content');
    assert.deepEqual([gc.datatype, gc.shape], ['FP64', [3]]);
    assert.deepEqual(gc.data, [0.5, 0.5, gcFraction('GGGATC')]);
    // Without an id in the body, the HTTP request id is echoed.
    const noId = await infer(h, '/v2/models/revcomp/versions/1.0.0/infer', inferRequest(['ACGT']), {
      'x-request-id': 'req-7',
    });
    assert.equal(noId.status, 200);
    assert.equal(noId.body.id, 'req-7');
  });

  it('infers exact GC statistics for a full batch, with typed tensors', async () => {
    const seqs = ['GGGG', 'ATAT', 'GCATGC', 'ACGTACGTAA', 'CCCCA', 'TTTTG', 'GA'];
    const r = await infer(h, '/v2/models/gc-scanner/infer', inferRequest(seqs, { task_type: 'gc_content' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assertValid(component('inference_response'), r.body, 'gc_content');
    const gc = output(r, 'gc_content');
    assert.deepEqual([gc.datatype, gc.shape], ['FP64', [7]]);
    assert.deepEqual(gc.data, seqs.map(gcFraction));
    const len = output(r, 'length');
    assert.deepEqual(
      len.data,
      seqs.map((s) => s.length),
    );
    const counts = output(r, 'counts');
    assert.deepEqual([counts.datatype, counts.shape, counts.parameters.content_type], ['BYTES', [7], 'json']);
    assert.deepEqual(JSON.parse(counts.data[1]), { A: 2, C: 0, G: 0, T: 2, U: 0, N: 0, other: 0 });
    // gc_skew is null for ATAT (no G or C): a field with nulls travels as JSON text.
    const skew = output(r, 'gc_skew');
    assert.equal(skew.datatype, 'BYTES');
    assert.deepEqual(
      skew.data.map((s: string) => JSON.parse(s)),
      [1, null, 0, 0, -1, 1, 1],
    );
    // max_batch_sequences is 7 here: one more is a 400, as on every batch-shaped surface (test/batch-limits.test.ts).
    const over = await infer(
      h,
      '/v2/models/gc-scanner/infer',
      inferRequest([...seqs, 'ACGT'], { task_type: 'gc_content' }),
    );
    assert.equal(over.status, 400, JSON.stringify(over.body));
    assert.match(over.body.error, /at most 7 sequences per request \(got 8; max_batch_sequences\)/);
    // Only the outputs asked for, in the order asked; [n, 1] shapes and nested data accepted.
    const only = await infer(h, '/v2/models/gc-scanner/infer', {
      inputs: [{ name: 'sequences', shape: [2, 1], datatype: 'BYTES', data: [['GGCA'], ['TTTA']] }],
      parameters: { task_type: 'gc_content' },
      outputs: [{ name: 'length' }, { name: 'gc_content' }],
    });
    assert.equal(only.status, 200, JSON.stringify(only.body));
    assert.deepEqual(
      only.body.outputs.map((o: any) => [o.name, o.data]),
      [
        ['length', [4, 4]],
        ['gc_content', [0.75, 0]],
      ],
    );
  });

  it('passes other parameters as model options (motif_scan motifs)', async () => {
    const r = await infer(
      h,
      '/v2/models/gc-scanner/infer',
      inferRequest(['TTGACAATTATAATG', 'CCCC'], { task_type: 'motif_scan', motifs: ['TATAAT'] }),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assertValid(component('inference_response'), r.body, 'motif_scan');
    assert.deepEqual(output(r, 'count').data, [2, 0]);
    const matches = output(r, 'matches');
    assert.equal(matches.datatype, 'BYTES');
    assert.deepEqual(JSON.parse(matches.data[0]), [
      { motif: 'TATAAT', start: 6, end: 12, strand: '-' },
      { motif: 'TATAAT', start: 8, end: 14, strand: '+' },
    ]);
    assert.deepEqual(JSON.parse(matches.data[1]), []);
  });

  it('returns embeddings as an FP32 [batch, dim] tensor equal to the native API output', async () => {
    const seqs = ['ATGCGTACGTAGCTAGCTAGCTAGC', 'GGGCCCAAATTTGGGCCCAAATTT'];
    const r = await infer(h, '/v2/models/dna-embed/infer', inferRequest(seqs));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assertValid(component('inference_response'), r.body, 'embedding');
    const emb = output(r, 'embedding');
    assert.deepEqual([emb.datatype, emb.shape], ['FP32', [2, 256]]);
    const native = await h.post('/models/dna-embed/predict/batch', { sequences: seqs });
    assert.equal(native.status, 200);
    for (let i = 0; i < 2; i++) {
      const row = emb.data.slice(i * 256, (i + 1) * 256);
      assert.deepEqual(row, native.body.data.predictions[i].embedding);
      assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-9);
    }
    assert.deepEqual(output(r, 'dimension').data, [256, 256]);
    const canonical = output(r, 'canonical');
    assert.deepEqual([canonical.datatype, canonical.data], ['BOOL', [true, true]]);
    // Strand independence survives the mapping; the dimension option changes the shape.
    const small = await infer(
      h,
      '/v2/models/dna-embed/infer',
      inferRequest([seqs[0]!, revcomp(seqs[0]!)], { embedding_dimension: 16 }),
    );
    const e16 = output(small, 'embedding');
    assert.deepEqual(e16.shape, [2, 16]);
    e16.data.slice(0, 16).forEach((v: number, i: number) => assert.ok(Math.abs(v - e16.data[16 + i]) < 1e-12));
  });

  it('rejects malformed inference requests with 400 and the protocol error shape', async () => {
    const path = '/v2/models/revcomp/infer';
    const bad: [unknown, RegExp][] = [
      [{}, /inputs is required/],
      [{ inputs: [] }, /inputs is required/],
      [{ inputs: [{ name: 'sequences', shape: [1], datatype: 'FP32', data: [1] }] }, /datatype BYTES/],
      [
        { inputs: [{ name: 'sequences', shape: [2], datatype: 'BYTES', data: ['ACGT'] }] },
        /holds 2 elements but data has 1/,
      ],
      [
        { inputs: [{ name: 'sequences', shape: [2, 2], datatype: 'BYTES', data: ['A', 'C', 'G', 'T'] }] },
        /\[n\] or \[n, 1\]/,
      ],
      [{ inputs: [{ name: 'sequences', shape: [1], datatype: 'BYTES', data: [5] }] }, /must be a string/],
      [
        { inputs: [{ name: 'sequences', shape: [1], datatype: 'BYTES', data: ['ACXT'] }] },
        /character 'X' at position 3/,
      ],
      [{ inputs: [{ name: 'sequences', shape: [0], datatype: 'BYTES', data: [] }] }, /no sequence/],
      [
        {
          inputs: [
            { name: 'sequences', shape: [1], datatype: 'BYTES', data: ['ACGT'] },
            { name: 'extra', shape: [1], datatype: 'BYTES', data: ['ACGT'] },
          ],
        },
        /unexpected input "extra"/,
      ],
      [
        {
          inputs: [
            { name: 'a', shape: [1], datatype: 'BYTES', data: ['A'] },
            { name: 'b', shape: [1], datatype: 'BYTES', data: ['A'] },
          ],
        },
        /takes one input, "sequences"/,
      ],
      [inferRequest(['ACGT'], { task_type: 'folding' }), /no task "folding"/],
      [inferRequest(['PETER'], { sequence_type: 'protein' }), /sequence type protein is not accepted/],
      [inferRequest(['ACGT'], undefined, { outputs: [{ name: 'nope' }] }), /unknown output "nope"/],
    ];
    for (const [body, message] of bad) {
      const r = await h.post(path, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${JSON.stringify(r.body)}`);
      assertDocumented('/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/infer', 'post', r);
      assertError(r, 400, 'inference_error_response', message);
    }
    assertError(await h.post(path, '{"inputs": ['), 400, 'inference_error_response');
    // A model with several tasks answers with its default task (its first, unless default_task names another).
    const byDefault = await infer(h, '/v2/models/gc-scanner/infer', inferRequest(['ACGT']));
    assert.equal(byDefault.status, 200, JSON.stringify(byDefault.body));
    assert.equal(byDefault.body.parameters.task_type, 'gc_content');
    // A sequence the model itself rejects fails the request (tensors are dense), naming it.
    assertError(
      await infer(h, '/v2/models/dna-embed/infer', inferRequest(['ACGTACGT', 'NNNN'])),
      400,
      'inference_error_response',
      /sequences\[1\]: .*k-mer/,
    );
    // A model that is not loaded.
    assertError(
      await infer(h, '/v2/models/broken-py/infer', inferRequest(['ACGT'])),
      503,
      'inference_error_response',
      /not loaded/,
    );
  });

  it('lists the model repository with states and reasons', async () => {
    const r = await h.post('/v2/repository/index', {});
    assert.equal(r.status, 200);
    assertValid(repositoryIndexSchema, r.body, 'repository index');
    assert.deepEqual(
      r.body.map((m: any) => [m.name, m.version, m.state]),
      [
        ['broken-py', '1.0.0', 'UNAVAILABLE'],
        ['dna-embed', '1.0.0', 'READY'],
        ['gc-scanner', '1.0.0', 'READY'],
        ['revcomp', '1.0.0', 'READY'],
      ],
    );
    assert.match(r.body[0].reason, /unloaded/);
    assert.equal(r.body[1].reason, '');
    const ready = await h.post('/v2/repository/index', { ready: true });
    assert.deepEqual(
      ready.body.map((m: any) => m.name),
      ['dna-embed', 'gc-scanner', 'revcomp'],
    );
    assertError(await h.post('/v2/repository/index', { ready: 'yes' }), 400, 'metadata_server_error_response');
  });

  it('loads and unloads models through the repository, and readiness follows', async () => {
    const unload = await h.post('/v2/repository/models/revcomp/unload');
    assert.equal(unload.status, 200, JSON.stringify(unload.body));
    assert.equal(unload.body, '');
    try {
      assertError(await h.get('/v2/models/revcomp/ready'), 400, 'metadata_model_error_response', /revcomp is unloaded/);
      assertError(
        await h.get('/v2/health/ready'),
        400,
        'metadata_server_error_response',
        /not ready: model revcomp is unloaded/,
      );
      assertError(await infer(h, '/v2/models/revcomp/infer', inferRequest(['ACGT'])), 503, 'inference_error_response');
      const index = await h.post('/v2/repository/index', {});
      assert.equal(index.body.find((m: any) => m.name === 'revcomp').state, 'UNAVAILABLE');
    } finally {
      const load = await h.post('/v2/repository/models/revcomp/load');
      assert.equal(load.status, 200, JSON.stringify(load.body));
      assert.equal(load.body, '');
    }
    assert.equal((await h.get('/v2/models/revcomp/ready')).status, 200);
    assert.equal((await h.get('/v2/health/ready')).status, 200);
    const again = await infer(h, '/v2/models/revcomp/infer', inferRequest(['AACG']));
    assert.deepEqual(output(again, 'reverse_complement').data, ['CGTT']);

    // A load that fails, and models that do not exist.
    assertError(await h.post('/v2/repository/models/broken-py/load'), 503, 'metadata_server_error_response');
    const index = await h.post('/v2/repository/index', {});
    const broken = index.body.find((m: any) => m.name === 'broken-py');
    assert.equal(broken.state, 'UNAVAILABLE');
    assert.match(broken.reason, /failed/);
    assertError(await h.post('/v2/repository/models/nope/load'), 404, 'metadata_server_error_response', /nope/);
    assertError(await h.post('/v2/repository/models/nope/unload'), 404, 'metadata_server_error_response', /nope/);
  });
});
