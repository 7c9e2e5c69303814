// Hostile input (issue 8, part 5): thousands of malformed, wrongly typed, huge, deeply nested,
// unicode and path-traversal requests against every route of a real gateway on loopback. Every
// answer must be < 500 (with two precise exceptions, see statusProblem), parse as JSON and have
// the error shape of its surface; the gateway must stay alive, ready and within a sane RSS.
//
// The routes come from the running server (listRoutes, recorded by an onRoute hook in
// src/api/server.ts), so a new route is fuzzed without touching this file.
// Seed: FUZZ_SEED (default below); runs per route: FUZZ_RUNS (default below). A failure prints both.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_STATUS } from '../src/errors.js';
import { listRoutes, type RouteEntry } from '../src/api/server.js';
import { startGateway, type Harness } from './helpers.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x150d31;
/** Generated requests per route: 25 in `npm test` (about 2,700 in all), 100 in `npm run test:long` (about 11,000). */
const RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.ISOMODEL_TEST_LONG === '1' ? 100 : 25));
/** Routes fuzzed at once (the machine is shared: keep it small). */
const PARALLEL = 3;

/** A real collection between the measurements (the gateway runs in this process). */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MODELS = ['revcomp', 'gc-scanner', 'dna-embed', 'protein-props', 'dnabert2'];
/** dnabert2 has no weights here: it fails to load, so its routes may answer 503 MODEL_NOT_LOADED. */
const EXPECT_UNAVAILABLE = ['dnabert2'];
const TASKS = [
  'reverse_complement',
  'gc_content',
  'motif_scan',
  'embedding',
  'property_prediction',
  'promoter_prediction',
  'classification',
];
/** Codes outside ERROR_STATUS that a route documents (jobs: 409). */
const EXTRA_CODES: Record<string, number> = { JOB_NOT_FINISHED: 409, IDEMPOTENCY_CONFLICT: 409 };

// ---------------------------------------------------------------------------------------------
// Generators

const HOSTILE_NAMES = [
  '..',
  '.',
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2fetc',
  '..%5C..%5Cwindows',
  '%00',
  'revcomp%00',
  'revcomp%00.yaml',
  'RevComp',
  'REVCOMP',
  'revcomp%20',
  '%20revcomp',
  'rev%0Acomp',
  'a'.repeat(64),
  'a'.repeat(65),
  'a'.repeat(199),
  'a'.repeat(201),
  'a'.repeat(5000),
  '%E2%80%AEpmocver',
  encodeURIComponent('модель'),
  encodeURIComponent('🧬'),
  '%F0%9F',
  '%zz',
  '%',
  '%%',
  '-x',
  '_',
  'models',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'toString',
  '%2F',
  '%5C',
  'a%2F..',
  '...',
  'x:y',
  encodeURIComponent('revcomp:reverse_complement'),
  '%C0%AE%C0%AE',
  '%252e%252e',
];
const VALID_NAMES = ['revcomp', 'gc-scanner', 'dna-embed', 'protein-props', 'dnabert2', 'no-such-model'];

/** A path segment for a URL parameter; side-effecting routes never get an installed model's name. */
const paramArb = (sideEffects: boolean): fc.Arbitrary<string> => {
  const hostile = fc.oneof(
    fc.constantFrom(...HOSTILE_NAMES),
    fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }).map(encodeURIComponent),
    fc.uuid(),
  );
  return sideEffects
    ? hostile
    : fc.oneof({ arbitrary: hostile, weight: 3 }, { arbitrary: fc.constantFrom(...VALID_NAMES), weight: 2 });
};

const sequenceArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.stringOf(fc.constantFrom(...'ACGTacgtNnRYKMSWBDHVUu'), { minLength: 1, maxLength: 300 }),
  fc.stringOf(fc.constantFrom(...'ACDEFGHIKLMNPQRSTVWYacdefghiklmnpqrstvwyXBZJOU*-. \n\t\r'), { maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'ACGT\u0000',
    'ＡＣＧＴ',
    'ACGT\u200bACGT',
    'ACGT\uFEFF',
    'Åcgt',
    'acgtRYN',
    '>seq1\nACGT',
    'ACG T\nACGT',
    'ßß',
    'ſ',
    'İ',
    '\uD800',
    'A'.repeat(5121),
    'ACGT'.repeat(1280),
    'M'.repeat(5120),
  ),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
);

const nameValueArb = fc.oneof(
  fc.constantFrom(
    ...VALID_NAMES,
    'revcomp:reverse_complement',
    'gc-scanner:motif_scan',
    'dna-embed:embedding',
    'dnabert2:embedding',
    'revcomp:',
    ':',
    '../revcomp',
  ),
  fc.constantFrom(...HOSTILE_NAMES).map((s) => decodeURIComponentSafe(s)),
);
const taskArb = fc.oneof(
  fc.constantFrom(...TASKS),
  fc.constantFrom('', 'EMBEDDING', 'embedding ', '__proto__', 'x'.repeat(65)),
  fc.string({ maxLength: 20 }),
);
const junkArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    -0,
    1e308,
    -1e308,
    2 ** 53 + 1,
    '',
    'x'.repeat(10_000),
    [],
    {},
    [null],
    { '': null },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);
const optionsArb = fc.oneof(
  fc.record(
    {
      chunk_size: fc.oneof(fc.integer({ min: -5, max: 100 }), junkArb),
      window: fc.oneof(fc.integer({ min: -5, max: 10_000 }), junkArb),
      motifs: fc.oneof(
        fc.array(fc.oneof(fc.stringOf(fc.constantFrom(...'ACGTNRYacgtXZß-'), { maxLength: 12 }), junkArb), {
          maxLength: 5,
        }),
        junkArb,
      ),
      embedding_dimension: fc.oneof(
        fc.integer({ min: -10, max: 2048 }),
        fc.constantFrom(1e9, 2 ** 31, 8, 1024),
        junkArb,
      ),
      kmer_sizes: fc.oneof(fc.array(fc.integer({ min: -2, max: 9 }), { maxLength: 6 }), junkArb),
      canonical: junkArb,
      normalize: junkArb,
      ph: fc.oneof(fc.double(), junkArb),
      return_confidence: junkArb,
      organism: junkArb,
    },
    { requiredKeys: [] },
  ),
  junkArb,
);

const messageArb = fc.record(
  {
    role: fc.oneof(fc.constantFrom('user', 'system', 'assistant', 'USER'), junkArb),
    content: fc.oneof(
      sequenceArb,
      fc.array(
        fc.record(
          { type: fc.constantFrom('text', 'image_url', 'x'), text: fc.oneof(sequenceArb, junkArb) },
          { requiredKeys: ['type'] },
        ),
        { maxLength: 3 },
      ),
    ),
  },
  { requiredKeys: [] },
);
const tensorArb = fc.record(
  {
    name: fc.oneof(fc.constantFrom('sequences', 'x', ''), junkArb),
    datatype: fc.oneof(fc.constantFrom('BYTES', 'FP32', 'bytes'), junkArb),
    shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 4 }), { maxLength: 3 }), junkArb),
    data: fc.oneof(
      fc.array(sequenceArb, { maxLength: 4 }),
      fc.array(fc.array(sequenceArb, { maxLength: 2 }), { maxLength: 2 }),
      junkArb,
    ),
    parameters: fc.oneof(fc.constant({ binary_data_size: 4 }), junkArb),
  },
  { requiredKeys: [] },
);
const jsonRpcArb = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), junkArb),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), junkArb),
    method: fc.oneof(
      fc.constantFrom(
        'initialize',
        'tools/list',
        'tools/call',
        'resources/list',
        'resources/read',
        'prompts/list',
        'ping',
        'notifications/initialized',
        'x/y',
      ),
      junkArb,
    ),
    params: fc.oneof(
      fc.record({
        protocolVersion: fc.constantFrom('2025-03-26', '2024-11-05', 'x'),
        capabilities: fc.constant({}),
        clientInfo: fc.constant({ name: 'fuzz', version: '0' }),
      }),
      fc.record(
        {
          name: fc.oneof(fc.constantFrom('predict', 'list_models', 'model_info', 'analyze', 'x'), junkArb),
          arguments: fc.dictionary(
            fc.constantFrom('model', 'sequence', 'sequences', 'task_type', 'options', 'name', 'uri'),
            fc.oneof(nameValueArb, sequenceArb, junkArb),
            { maxKeys: 4 },
          ),
        },
        { requiredKeys: [] },
      ),
      fc.record({
        uri: fc.oneof(
          fc.constantFrom(
            'isomodel://models',
            'isomodel://models/revcomp',
            'isomodel://models/../../etc/passwd',
            'file:///etc/passwd',
          ),
          junkArb,
        ),
      }),
      junkArb,
    ),
  },
  { requiredKeys: [] },
);

/** Fields every route reads somewhere, each with plausible, wrongly typed and hostile values. */
const fieldArbs: Record<string, fc.Arbitrary<unknown>> = {
  sequence: sequenceArb,
  sequences: fc.oneof(
    fc.array(sequenceArb, { maxLength: 6 }),
    fc.constant(Array.from({ length: 101 }, () => 'ACGT')),
    junkArb,
  ),
  task_type: fc.oneof(taskArb, junkArb),
  task: fc.oneof(taskArb, junkArb),
  sequence_type: fc.oneof(fc.constantFrom('DNA', 'dna', 'RNA', 'protein', 'PROTEIN', 'x', 'x'.repeat(17)), junkArb),
  options: optionsArb,
  timeout_ms: fc.oneof(fc.integer({ min: -1, max: 50 }), fc.constantFrom(3_600_000, 3_600_001), junkArb),
  priority: fc.oneof(fc.integer({ min: -12, max: 12 }), junkArb),
  stream: fc.oneof(fc.boolean(), junkArb),
  model: fc.oneof(nameValueArb, junkArb),
  model_name: fc.oneof(nameValueArb, junkArb),
  name: fc.oneof(nameValueArb, junkArb),
  input: fc.oneof(sequenceArb, fc.array(sequenceArb, { maxLength: 4 }), junkArb),
  encoding_format: fc.oneof(fc.constantFrom('float', 'base64', 'x'), junkArb),
  dimensions: fc.oneof(fc.integer({ min: -1, max: 2000 }), junkArb),
  messages: fc.oneof(fc.array(messageArb, { maxLength: 3 }), junkArb),
  n: fc.oneof(fc.integer({ min: -1, max: 3 }), junkArb),
  stream_options: fc.oneof(fc.record({ include_usage: junkArb }), junkArb),
  inputs: fc.oneof(
    fc.array(tensorArb, { maxLength: 3 }),
    fc.array(fc.record({ sequence: sequenceArb, id: junkArb }, { requiredKeys: [] }), { maxLength: 3 }),
    junkArb,
  ),
  outputs: fc.oneof(
    fc.array(fc.record({ name: fc.oneof(fc.string({ maxLength: 10 }), junkArb) }), { maxLength: 3 }),
    junkArb,
  ),
  parameters: fc.oneof(
    fc.record({ task_type: fc.oneof(taskArb, junkArb), sequence_type: junkArb }, { requiredKeys: [] }),
    junkArb,
  ),
  id: junkArb,
  ready: junkArb,
  data: fc.oneof(
    fc.constantFrom('>a\nACGT\n>b\nGGCC\n', 'sequence\nACGT\n', '{"sequence":"ACGT"}\n', 'id,sequence\n1,ACGT\n'),
    sequenceArb,
    junkArb,
  ),
  format: fc.oneof(fc.constantFrom('fasta', 'jsonl', 'csv', 'tsv', 'json', 'x'), junkArb),
  pipeline: junkArb,
  pipeline_yaml: fc.oneof(
    fc.constantFrom('name: p\nsteps: [{model: revcomp}]\n', 'a: [', '!!js/function "x"', '&a [*a]'),
    junkArb,
  ),
  workers: junkArb,
  chunk_size: junkArb,
  cpu_percent: junkArb,
  restart_unhealthy: junkArb,
  jsonrpc: fc.oneof(fc.constant('2.0'), junkArb),
  method: fc.oneof(fc.constantFrom('initialize', 'tools/call'), junkArb),
  params: junkArb,
  ['__proto__']: fc.constant({ polluted: true }),
  constructor: fc.constant({ prototype: { polluted: true } }),
};
const fieldNames = Object.keys(fieldArbs);
const objectArb: fc.Arbitrary<Record<string, unknown>> = fc
  .uniqueArray(fc.constantFrom(...fieldNames), { maxLength: 6 })
  .chain((keys) =>
    keys.length === 0
      ? fc.constant({})
      : fc.tuple(...keys.map((k) => fieldArbs[k]!)).map((vals) => Object.fromEntries(keys.map((k, i) => [k, vals[i]]))),
  );

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const DEEP = [1_000, 5_000, 20_000, 100_000];
function nest(depth: number, open: string, close: string, inner: string): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

interface Body {
  text: string | Buffer;
  /** What the body is, for the failure report. */
  kind: string;
  /** The parsed object, when the body is one (for the status rules). */
  obj?: Record<string, unknown>;
}

const bodyArb = (limit: number): fc.Arbitrary<Body> =>
  fc.oneof(
    { weight: 12, arbitrary: objectArb.map((obj): Body => ({ text: JSON.stringify(obj), kind: 'object', obj })) },
    {
      weight: 3,
      arbitrary: jsonRpcArb.map((obj): Body => ({
        text: JSON.stringify(obj),
        kind: 'json-rpc',
        obj: obj as Record<string, unknown>,
      })),
    },
    {
      weight: 2,
      arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v): Body => ({ text: JSON.stringify(v), kind: 'json-value' })),
    },
    {
      weight: 3,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            '',
            '{',
            '}',
            '{"sequence":}',
            '{"sequence":"ACGT",}',
            "{'sequence':'ACGT'}",
            '{"sequence":NaN}',
            'null',
            'true',
            '"ACGT"',
            '[]',
            '1e999',
            '\uFEFF{"sequence":"ACGT"}',
            '{"a":1}{"b":2}',
            '{"__proto__":{"x":1}}',
            '{"constructor":{"prototype":{"x":1}}}',
            '{"sequence":"ACGT","sequence":"GG"}',
            '{"sequence":"\\ud800"}',
            '{"sequence":"\\u0000"}',
            '\u0000',
            'ACGT',
          ),
          fc.string({ unit: 'binary', maxLength: 200 }),
          objectArb.chain((o) =>
            fc.nat({ max: Math.max(1, JSON.stringify(o).length - 1) }).map((n) => JSON.stringify(o).slice(0, n)),
          ),
        )
        .map((text): Body => ({ text, kind: 'malformed' })),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.constantFrom(...DEEP), fc.nat({ max: 5 })).map(([d, how]): Body => {
        const deepArr = nest(d, '[', ']', '"ACGT"');
        const deepObj = nest(d, '{"a":', '}', '1');
        const texts = [
          deepArr,
          deepObj,
          `{"sequence":${deepArr},"sequences":${deepArr}}`,
          `{"options":${deepObj},"sequence":"ACGT","sequences":["ACGT"],"task_type":"gc_content","input":"ACGT","model":"dna-embed"}`,
          `{"inputs":[{"name":"sequences","datatype":"BYTES","shape":[1],"data":${deepArr}}]}`,
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${deepObj}}`,
        ];
        return { text: texts[how]!, kind: `deep-${d}-${how}` };
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(limit - 200, limit + 10, limit * 2).chain((size) =>
        fc.constantFrom('sequence', 'sequences', 'data', 'input').map((field): Body => {
          const filler = 'ACGT'.repeat(Math.ceil(size / 4)).slice(0, size);
          const obj = field === 'sequences' ? { sequences: [filler] } : { [field]: filler };
          return { text: JSON.stringify(obj), kind: `huge-${size}-${field}` };
        }),
      ),
    },
  );

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=utf-16',
  'application/json;;',
  'application/jsonx',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'text/csv',
  'text/x-fasta',
  'application/x-ndjson',
  'application/octet-stream',
  '*/*',
  ';',
  'application/',
  'text/event-stream',
  'application/json-rpc',
  'application/problem+json',
];
const contentTypeArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const QUERY_KEYS = [
  'window',
  'points',
  'model',
  'limit',
  'state',
  'kind',
  'history',
  'format',
  'status',
  'offset',
  'from',
  'follow',
  'download',
  'task',
  'task_type',
  'options',
  'name',
  'workers',
  'chunk_size',
  'priority',
  'actor',
  'action',
  'outcome',
  'since',
  '__proto__',
  'constructor',
  'toString',
];
const queryValueArb = fc.oneof(
  fc.constantFrom(
    '',
    '1',
    '0',
    '-1',
    '1h',
    '90d',
    '91d',
    '0.0001s',
    '1e309',
    'NaN',
    'json',
    'html',
    'csv',
    'true',
    'false',
    'firing',
    'revcomp',
    'dnabert2',
    '..%2F..',
    '%00',
    '%zz',
    'x'.repeat(3000),
    '%E2%80%AE',
    '1&x=2',
    '{"a":1}',
  ),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);
const queryArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant('') },
  {
    weight: 3,
    arbitrary: fc
      .array(fc.tuple(fc.constantFrom(...QUERY_KEYS), queryValueArb), { minLength: 1, maxLength: 5 })
      .map((pairs) => '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '?',
      '??',
      '?&&',
      '?=',
      '?a',
      '?a[b]=1',
      '?a[__proto__][x]=1',
      '?' + 'a=1&'.repeat(2000),
      '?window=1h&window=2h',
      '?model=a&model=b',
      '?limit=1&limit=2',
      '?format=json&format=html',
      '?%zz=1',
    ),
  },
);

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'PURGE', 'SEARCH'];
const ACCEPTS = [
  undefined,
  'application/json',
  'text/event-stream',
  'application/json, text/event-stream',
  '*/*',
  'text/html',
  'text/event-stream;q=0',
];

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Body;
}

/** Fills a route pattern's parameters (':name', '*') with generated segments. */
function fill(url: string, segs: string[]): string {
  let i = 0;
  return url.replace(/:[A-Za-z_]+|\*/g, () => segs[i++] ?? 'x');
}

// Routes that change what is loaded get made-up model names only (the deployment API's
// /api/v1/models/:id also takes DELETE and PUT).
const SIDE_EFFECTS = /\/(load|unload|reload|deploy|scale|promote|rollback|traffic)$|^\/api\/v1\/models\/:id$/;

function requestArb(route: RouteEntry, bodyLimit: number, sessions: string[]): fc.Arbitrary<Req> {
  const params = (route.url.match(/:[A-Za-z_]+|\*/g) ?? []).length;
  const segs = fc.array(paramArb(SIDE_EFFECTS.test(route.url)), { minLength: params, maxLength: params });
  const method = fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...route.methods.filter((m) => m !== 'HEAD')) },
    { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
  );
  const headers = fc.record(
    {
      accept: fc.constantFrom(...ACCEPTS),
      'x-request-id': fc.oneof(
        fc.constant(undefined),
        fc.constantFrom('fuzz-1', 'x'.repeat(129), 'bad id', '../../x', 'id\u00e9'.replace(/[^\x20-\x7e]/g, '?')),
      ),
      'mcp-session-id': fc.oneof(fc.constant(undefined), fc.constantFrom(...sessions, 'nope', '')),
      'idempotency-key': fc.oneof(fc.constant(undefined), fc.constantFrom('k1', 'k1', '', 'x'.repeat(300), 'k e y')),
      'content-type': contentTypeArb,
    },
    { requiredKeys: [] },
  );
  return fc
    .record({ method, segs, query: queryArb, headers, body: bodyArb(bodyLimit) })
    .map(({ method: m, segs: s, query, headers: h, body }) => {
      const clean: Record<string, string> = {};
      for (const [k, v] of Object.entries(h)) if (typeof v === 'string') clean[k] = v;
      const hasBody = m !== 'GET' && m !== 'HEAD';
      if (!hasBody) delete clean['content-type'];
      return { method: m, path: fill(route.url, s) + query, headers: clean, body: hasBody ? body : undefined };
    });
}

// ---------------------------------------------------------------------------------------------
// Transport: node:http, so that any method and any already-encoded path go out as they are.

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: PARALLEL * 2 });

function send(base: URL, r: Req): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...r.headers };
    const body = r.body ? (typeof r.body.text === 'string' ? Buffer.from(r.body.text) : r.body.text) : undefined;
    if (body) headers['content-length'] = body.length;
    const req = http.request(
      { host: base.hostname, port: base.port, method: r.method, path: r.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('timeout: no answer in 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Raw bytes on a fresh socket: what an HTTP client library would refuse to send. */
function sendRaw(base: URL, bytes: string | Buffer): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(base.port), base.hostname);
    const chunks: Buffer[] = [];
    sock.setTimeout(20_000, () => sock.destroy(new Error('timeout')));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      const split = raw.indexOf('\r\n\r\n');
      const head = split === -1 ? raw : raw.slice(0, split);
      const headers: http.IncomingHttpHeaders = {};
      for (const line of head.split('\r\n').slice(1)) {
        const at = line.indexOf(':');
        if (at > 0) headers[line.slice(0, at).toLowerCase()] = line.slice(at + 1).trim();
      }
      let text = split === -1 ? '' : Buffer.from(raw.slice(split + 4), 'latin1').toString('utf8');
      if (/chunked/i.test(String(headers['transfer-encoding'] ?? '')))
        text = text.replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n/gi, '').replace(/\r\n$/, '');
      resolve({ status: m ? Number(m[1]) : 0, headers, text });
    });
    sock.end(bytes);
  });
}

// ---------------------------------------------------------------------------------------------
// What a proper answer is

type Surface = 'native' | 'agent' | 'v2' | 'openai' | 'mcp';

function surfaceOf(method: string, path: string, registered: (m: string, p: string) => boolean): Surface {
  const p = path.split('?')[0]!;
  if (p === '/v2' || p.startsWith('/v2/')) return 'v2';
  // Surfaces with their own error shape own only the methods they register; anything else is
  // the gateway's 404 in the native envelope.
  if ((p === '/v1/embeddings' || p === '/v1/chat/completions' || p === '/v1/completions') && registered(method, p))
    return 'openai';
  if (p === '/mcp' && registered(method, p)) return 'mcp';
  if (p.startsWith('/agent/')) return 'agent';
  return 'native';
}

function parseJson(text: string): { ok: true; value: any } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

function nativeErrorProblem(b: any, status: number, res: Resp): string | null {
  if (!isObj(b)) return 'error body is not an object';
  if (b.success !== false) return 'success is not false';
  if (typeof b.message !== 'string') return 'message is not a string';
  if (!isObj(b.error) || typeof b.error.code !== 'string') return 'error.code is not a string';
  if (!('details' in b.error)) return 'error.details is missing';
  if (typeof b.timestamp !== 'string' || Number.isNaN(Date.parse(b.timestamp))) return 'timestamp is not a date';
  if (typeof b.request_id !== 'string' || b.request_id.length === 0) return 'request_id is not a string';
  if (res.headers['x-request-id'] !== undefined && res.headers['x-request-id'] !== b.request_id)
    return 'x-request-id header differs from request_id';
  const expected = (ERROR_STATUS as Record<string, number>)[b.error.code] ?? EXTRA_CODES[b.error.code];
  if (expected === undefined) return `unknown error code ${b.error.code}`;
  if (expected !== status) return `code ${b.error.code} sent with status ${status} (expected ${expected})`;
  return null;
}

function nativeOkProblem(b: any): string | null {
  if (!isObj(b)) return 'body is not an object';
  if (b.success !== true) return 'success is not true';
  if (typeof b.message !== 'string') return 'message is not a string';
  if (!('data' in b)) return 'data is missing';
  if (typeof b.timestamp !== 'string' || typeof b.request_id !== 'string') return 'timestamp or request_id missing';
  return null;
}

function errorProblem(surface: Surface, b: any, status: number, res: Resp): string | null {
  switch (surface) {
    case 'native':
    case 'agent':
      return nativeErrorProblem(b, status, res);
    case 'v2':
      return isObj(b) && typeof b.error === 'string' && Object.keys(b).length === 1
        ? null
        : 'not the OIP error {error: string}';
    case 'openai':
      return isObj(b) &&
        isObj(b.error) &&
        typeof b.error.message === 'string' &&
        typeof b.error.type === 'string' &&
        typeof b.error.code === 'string'
        ? null
        : 'not the OpenAI error {error:{message,type,code}}';
    case 'mcp':
      return isObj(b) &&
        b.jsonrpc === '2.0' &&
        isObj(b.error) &&
        typeof b.error.code === 'number' &&
        typeof b.error.message === 'string'
        ? null
        : 'not a JSON-RPC error';
  }
}

/** Successful answers that are not JSON by design. */
function nonJsonOk(method: string, path: string, ctype: string): boolean {
  const p = path.split('?')[0]!;
  if (ctype.startsWith('text/event-stream')) return method === 'POST' || (method === 'GET' && p === '/mcp');
  if (p === '/metrics/prometheus') return ctype.startsWith('text/plain');
  if (p === '/console' || p === '/console/' || p.startsWith('/console/'))
    return /^text\/(html|css|javascript)/.test(ctype);
  if (p.startsWith('/v1/reports/')) return ctype.startsWith('text/html');
  if (/^\/v1\/jobs\/[^/]+\/results$/.test(p)) return /^(application\/x-ndjson|text\/csv)/.test(ctype);
  return false;
}

/** Every `data:` line of an event stream is JSON (or OpenAI's [DONE]); error events have their surface's shape. */
function sseProblem(surface: Surface, text: string): string | null {
  const events = text.split(/\n\n/).filter((e) => e.trim());
  for (const ev of events) {
    const lines = ev.split('\n');
    const name = lines
      .find((l) => l.startsWith('event:'))
      ?.slice(6)
      .trim();
    const data = lines
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data || data === '[DONE]') continue;
    const j = parseJson(data);
    if (!j.ok) return `event data is not JSON: ${data.slice(0, 80)}`;
    if (surface === 'native' && name === 'error') {
      const p = nativeErrorProblem(j.value, (ERROR_STATUS as Record<string, number>)[j.value?.error?.code] ?? 0, {
        status: 200,
        headers: {},
        text: '',
      });
      if (p) return `error event: ${p}`;
      if (j.value.error.code === 'INTERNAL_ERROR') return 'error event INTERNAL_ERROR';
    }
    if (surface === 'native' && name === 'result' && nativeOkProblem(j.value))
      return `result event: ${nativeOkProblem(j.value)}`;
    if (
      surface === 'openai' &&
      isObj(j.value) &&
      'error' in j.value &&
      errorProblem('openai', j.value, 400, { status: 200, headers: {}, text: '' })
    )
      return 'in-band error is not OpenAI-shaped';
  }
  return null;
}

interface Ctx {
  unavailable: string[];
  registered: (m: string, p: string) => boolean;
}

/** Which 5xx are legitimate: none, except the two a client can cause without any server fault. */
function statusProblem(surface: Surface, r: Req, res: Resp, b: any, ctx: Ctx): string | null {
  if (res.status < 500) return null;
  const message: string =
    surface === 'v2' ? b?.error : surface === 'native' || surface === 'agent' ? b?.message : b?.error?.message;
  const code: string | undefined =
    surface === 'native' || surface === 'agent'
      ? b?.error?.code
      : surface === 'openai'
        ? String(b?.error?.code ?? '').toUpperCase()
        : undefined;
  // 503: a model that is really not loaded (dnabert2 has no weights), named in the answer.
  if (res.status === 503 && typeof message === 'string' && (code === undefined || code === 'MODEL_NOT_LOADED')) {
    const named = ctx.unavailable.filter((n) => new RegExp(`\\b${n}\\b`).test(message));
    if (named.length > 0) return null;
  }
  // 504: the client asked for a deadline of a few milliseconds itself.
  if (res.status === 504 && (code === undefined || code === 'PREDICTION_TIMEOUT')) {
    const t = r.body?.obj?.timeout_ms;
    if (typeof t === 'number' && t <= 1000) return null;
  }
  return `status ${res.status}`;
}

function check(r: Req, res: Resp, ctx: Ctx): string | null {
  const surface = surfaceOf(r.method, r.path, ctx.registered);
  const ctype = String(res.headers['content-type'] ?? '');
  if (r.method === 'HEAD' || res.status === 204)
    return res.status >= 500 ? `status ${res.status} on ${r.method}` : null;
  // A 200 with an empty body is the OIP repository load/unload answer.
  if (
    surface === 'v2' &&
    res.status === 200 &&
    res.text === '' &&
    /\/repository\/models\/[^/]+\/(load|unload)$/.test(r.path.split('?')[0]!)
  )
    return null;
  // MCP: a 200/202 with no body ends a session (DELETE) or acknowledges a notification.
  if (surface === 'mcp' && (res.status === 200 || res.status === 202) && res.text === '') return null;
  if (ctype.startsWith('text/event-stream')) {
    if (res.status !== 200) return `event stream with status ${res.status}`;
    if (!nonJsonOk(r.method, r.path, ctype)) return 'unexpected event stream';
    return sseProblem(surface, res.text);
  }
  if (res.status < 400 && nonJsonOk(r.method, r.path, ctype)) return null;
  const j = parseJson(res.text);
  if (!j.ok) return `body is not JSON (content-type ${ctype}): ${res.text.slice(0, 120)}`;
  const b = j.value;
  const sp = statusProblem(surface, r, res, b, ctx);
  if (sp) return sp;
  if (res.status >= 400) return errorProblem(surface, b, res.status, res);
  if (surface === 'native') return nativeOkProblem(b);
  // Agent answers are {success: true, …} or, for /agent/health, {status, service} (docs/agent-api.md).
  if (surface === 'agent')
    return isObj(b) && b.success !== false ? null : 'agent success is not an object without success: false';
  if (surface === 'mcp') return isObj(b) || Array.isArray(b) ? null : 'MCP answer is not JSON-RPC';
  return isObj(b) || Array.isArray(b) ? null : 'success body is not an object';
}

function describeReq(r: Req): string {
  const body = r.body
    ? `${r.body.kind} ${typeof r.body.text === 'string' ? r.body.text.slice(0, 160) : '<bytes>'}${r.body.text.length > 160 ? `… (${r.body.text.length} bytes)` : ''}`
    : '-';
  return `${r.method} ${r.path.slice(0, 160)} headers=${JSON.stringify(r.headers)} body=${body}`;
}

// ---------------------------------------------------------------------------------------------

describe('hostile input against every route', { timeout: 240_000 }, () => {
  let h: Harness;
  let base: URL;
  let routes: RouteEntry[];
  let ctx: Ctx;
  let sent = 0;
  const statuses: Record<string, number> = {};
  const failures: string[] = [];
  const crashes: unknown[] = [];
  const onCrash = (e: unknown): void => {
    crashes.push(e);
  };
  const sessions: string[] = [];
  let rssBefore = 0;
  let heapBefore = 0;
  let t0 = 0;

  const exchange = async (r: Req, label: string): Promise<void> => {
    sent++;
    let res: Resp;
    try {
      res = await send(base, r);
    } catch (e) {
      // The one tolerated transport error: the server answers 413 early and closes the socket
      // while a body far over the limit is still being written.
      const size = r.body?.text.length ?? 0;
      if (size > h.gw.config.body_limit_bytes && /EPIPE|ECONNRESET/.test((e as Error).message)) return;
      failures.push(`${label}: transport error ${(e as Error).message} for ${describeReq(r)}`);
      return;
    }
    const cls = res.status >= 500 ? String(res.status) : `${Math.floor(res.status / 100)}xx`;
    statuses[cls] = (statuses[cls] ?? 0) + 1;
    const problem = check(r, res, ctx);
    if (problem)
      failures.push(
        `${label}: ${problem}\n    request: ${describeReq(r)}\n    answer: ${res.status} ${String(res.headers['content-type'] ?? '')} ${res.text.slice(0, 300)}`,
      );
  };

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    h = await startGateway(MODELS, { rate_limit: { max: 0 } });
    base = new URL(h.url);
    routes = [...listRoutes(h.gw.server!)];
    const registered = (m: string, p: string): boolean => routes.some((r) => r.methods.includes(m) && r.url === p);
    ctx = { unavailable: h.gw.registry.names().filter((n) => h.gw.registry.status(n) !== 'ready'), registered };
    // A live MCP session, so that some requests reach the tools rather than the session check.
    const init = await send(base, {
      method: 'POST',
      path: '/mcp',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: {
        kind: 'init',
        text: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'fuzz', version: '0' } },
        }),
      },
    });
    const sid = init.headers['mcp-session-id'];
    if (typeof sid === 'string') sessions.push(sid);
    gc();
    rssBefore = process.memoryUsage().rss;
    heapBefore = process.memoryUsage().heapUsed;
    t0 = Date.now();
  });

  after(async () => {
    agent.destroy();
    await h?.close();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });

  it('starts with every model but the weightless one ready', () => {
    assert.deepEqual(ctx.unavailable, EXPECT_UNAVAILABLE);
    assert.ok(routes.length >= 40, `only ${routes.length} routes recorded`);
    assert.equal(sessions.length, 1, 'the MCP initialize request opened no session');
  });

  it('answers every generated request of every route with a proper, non-5xx answer', async () => {
    const targets = routes.filter((r) => !(r.methods.length === 1 && r.methods[0] === 'HEAD'));
    const limit = h.gw.config.body_limit_bytes;
    const queue = [...targets];
    const worker = async (): Promise<void> => {
      for (let route = queue.shift(); route; route = queue.shift()) {
        const label = `${route.methods.join(',')} ${route.url}`;
        // One seed per route, derived from FUZZ_SEED, so routes of the same shape differ.
        const seed = (SEED + targets.indexOf(route) * 7919) | 0;
        const started = Date.now();
        await fc.assert(
          fc.asyncProperty(requestArb(route, limit, sessions), async (r) => {
            await exchange(r, label);
          }),
          { seed, numRuns: RUNS, endOnFailure: true },
        );
        if (process.env.FUZZ_VERBOSE) console.log(`fuzz: ${label} ${Date.now() - started} ms`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, () => worker()));
    assert.deepEqual(
      failures,
      [],
      `${failures.length} bad answers (FUZZ_SEED=${SEED}, FUZZ_RUNS=${RUNS}):\n${failures.slice(0, 40).join('\n')}`,
    );
  });

  it('answers malformed HTTP on a raw socket with an envelope', async () => {
    const cases: [string, string | Buffer][] = [
      ['unknown method', 'FOO /health HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['bad request line', 'GET\r\n\r\n'],
      ['header overflow', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
      ['bad header', 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'],
      [
        'raw utf-8 path',
        Buffer.concat([
          Buffer.from('GET /models/'),
          Buffer.from('модель'),
          Buffer.from('/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        ]),
      ],
      ['NUL in path', 'GET /models/rev\u0000comp/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      ['dot segments', 'GET /models/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      ['backslashes', 'GET /models/..\\..\\x/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      [
        'body shorter than content-length',
        'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"sequence":',
      ],
      [
        'bad chunked body',
        'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      ],
      [
        'chunked over the limit',
        `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(3 * 1024 * 1024).toString(16)}\r\n${'{'.repeat(3 * 1024 * 1024)}\r\n0\r\n\r\n`,
      ],
    ];
    for (const [what, bytes] of cases) {
      sent++;
      const res = await sendRaw(base, bytes);
      if (res.status === 0) continue; // the connection was closed without an answer: nothing to judge
      const r: Req = { method: 'GET', path: '/raw', headers: {} };
      const problem = res.status >= 500 ? `status ${res.status}` : check(r, res, ctx);
      if (problem) failures.push(`raw ${what}: ${problem}: ${res.status} ${res.text.slice(0, 200)}`);
    }
    assert.deepEqual(failures, [], failures.join('\n'));
  });

  it('regressions: each of these once answered a 5xx or a bare Fastify error', async () => {
    const cases: Req[] = [
      // Invalid percent-encoding in a path parameter (Fastify's FST_ERR_BAD_URL).
      { method: 'GET', path: '/models/%zz/info', headers: {} },
      {
        method: 'POST',
        path: '/v2/models/%zz/infer',
        headers: { 'content-type': 'application/json' },
        body: { kind: 'object', text: '{}' },
      },
      // Deeply nested tensor data (recursive flatten).
      {
        method: 'POST',
        path: '/v2/models/revcomp/infer',
        headers: { 'content-type': 'application/json' },
        body: {
          kind: 'deep',
          text: `{"inputs":[{"name":"sequences","datatype":"BYTES","shape":[1],"data":${nest(20_000, '[', ']', '"ACGT"')}}]}`,
        },
      },
      // Bodies /mcp cannot parse are JSON-RPC errors, not native envelopes.
      {
        method: 'POST',
        path: '/mcp',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: { kind: 'malformed', text: '{"jsonrpc":' },
      },
      {
        method: 'POST',
        path: '/mcp',
        headers: { 'content-type': 'text/plain', accept: 'application/json, text/event-stream' },
        body: { kind: 'malformed', text: 'hello' },
      },
      // A repeated query key is an array: parseWindow called .trim() on it.
      { method: 'GET', path: '/v1/monitor/history?window=1h&window=2h', headers: {} },
      { method: 'GET', path: '/v1/monitor/events?window=1h&window=2h', headers: {} },
      { method: 'GET', path: '/v1/reports/revcomp?window=1h&window=2h', headers: {} },
      // Deep JSON: the job request hash recursed until the stack overflowed.
      {
        method: 'POST',
        path: '/v1/jobs',
        headers: { 'content-type': 'application/json' },
        body: { kind: 'deep', text: nest(100_000, '{"a":', '}', '1') },
      },
    ];
    for (const r of cases) {
      sent++;
      const res = await send(base, r);
      const problem = check(r, res, ctx);
      assert.equal(problem, null, `${describeReq(r)} -> ${res.status} ${res.text.slice(0, 300)}`);
      assert.ok(res.status >= 400 && res.status < 500, `${describeReq(r)} -> ${res.status}`);
    }
    // Malformed HTTP is answered by the gateway's own envelope, with the status Node chose.
    const overflow = await sendRaw(base, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(overflow.status, 431);
    assert.equal(JSON.parse(overflow.text).error.code, 'HEADERS_TOO_LARGE');
    const badMethod = await sendRaw(base, 'FOO /health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(badMethod.status, 400);
    assert.equal(JSON.parse(badMethod.text).error.code, 'INVALID_REQUEST');
  });

  it('is alive, ready and within a sane RSS afterwards', async () => {
    const wall = (Date.now() - t0) / 1000;
    assert.deepEqual(crashes, [], 'uncaught exceptions or unhandled rejections in the gateway process');
    await h.gw.monitor.resetSettings();
    const ready = await send(base, { method: 'GET', path: '/health/ready', headers: {} });
    assert.equal(ready.status, 200, ready.text);
    for (const n of MODELS.filter((m) => !EXPECT_UNAVAILABLE.includes(m)))
      assert.equal(h.gw.registry.status(n), 'ready', `${n} is ${h.gw.registry.status(n)}`);
    const rc = await send(base, {
      method: 'POST',
      path: '/models/revcomp/predict',
      headers: { 'content-type': 'application/json' },
      body: { kind: 'object', text: '{"sequence":"ACGT"}' },
    });
    assert.equal(JSON.parse(rc.text).data.reverse_complement, 'ACGT');
    gc();
    const { rss, heapUsed } = process.memoryUsage();
    const grewMb = (rss - rssBefore) / 2 ** 20;
    const heapGrewMb = (heapUsed - heapBefore) / 2 ** 20;
    const byClass = Object.entries(statuses)
      .map(([c, n]) => `${c}: ${n}`)
      .join(', ');
    console.log(
      `fuzz: seed ${SEED}, ${RUNS} runs per route, ${routes.length} routes, ${sent} requests (${byClass}) in ${wall.toFixed(1)} s; gateway RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rss / 2 ** 20).toFixed(0)} MB, heap ${(heapBefore / 2 ** 20).toFixed(0)} -> ${(heapUsed / 2 ** 20).toFixed(0)} MB`,
    );
    // RSS keeps the allocator's high-water mark of the multi-megabyte bodies; the heap after a
    // full collection shows what is really retained.
    assert.ok(grewMb < 768, `gateway RSS grew by ${grewMb.toFixed(0)} MB`);
    assert.ok(heapGrewMb < 64, `gateway heap grew by ${heapGrewMb.toFixed(0)} MB after a full GC`);
  });
});
