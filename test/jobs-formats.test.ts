// The file-exchange formats: every input format to records, the exchange output shapes, CSV.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { JobIntake, submissionHash, type Upload } from '../src/jobs/intake.js';
import { canonical, JsonObjectScanner, MAX_JSON_DEPTH } from '../src/jobs/json-body.js';
import type { JobRunner } from '../src/jobs/runner.js';
import {
  aggregateRecord,
  CsvWriter,
  exchangeRecord,
  formatFromContentType,
  formatFromFileName,
  InputFormatError,
  parseDelimited,
  parseExchangeObject,
  isExchangeWrapper,
  parseInput,
  recordObject,
  recordParser,
  sniffFormat,
  toCsv,
  type InputFormat,
  type InputRecord,
  type OutputRecord,
} from '../src/jobs/formats.js';

const meta = (index: number, request_id = `s${index}`) => ({
  request_id,
  processing_time_ms: 1.5,
  service: 'm',
  version: '1.0.0',
  index,
});

describe('job input formats', () => {
  it('reads the exchange JSON: sequence, organism and parameters, request_id from metadata', () => {
    const recs = parseInput(
      JSON.stringify({
        task: 'codon_optimize',
        input: { sequence: 'ATGC', organism: 'human', parameters: { method: 'sharp_li' } },
        metadata: { request_id: 'task_001' },
      }),
      'json',
    );
    assert.deepEqual(recs, [
      {
        id: 'task_001',
        sequence: 'ATGC',
        task: 'codon_optimize',
        organism: 'human',
        parameters: { method: 'sharp_li' },
      },
    ]);
  });

  it('expands an exchange input with sequences into one record each, named request_id#n', () => {
    const x = parseExchangeObject(
      { task: 't', input: { sequences: ['AC', { id: 'own', sequence: 'GT' }, 'TT'] }, metadata: { request_id: 'r' } },
      'fallback',
      'f.json',
    );
    assert.equal(x.multi, true);
    assert.equal(x.requestId, 'r');
    assert.deepEqual(
      x.records.map((r) => [r.id, r.sequence, r.task]),
      [
        ['r#1', 'AC', 't'],
        ['own', 'GT', 't'],
        ['r#3', 'TT', 't'],
      ],
    );
  });

  it('reads an array of exchange objects, naming the unnamed ones by position', () => {
    const recs = parseInput(
      JSON.stringify([{ input: { sequence: 'AA' } }, { input: { sequence: 'CC' }, metadata: { request_id: 'b' } }]),
      'json',
    );
    assert.deepEqual(
      recs.map((r) => [r.id, r.sequence]),
      [
        ['seq1', 'AA'],
        ['b', 'CC'],
      ],
    );
  });

  it('reads JSONL: exchange objects, flat records and bare strings; a bad line names its number', () => {
    const text = [
      '{"input":{"sequence":"AC"},"metadata":{"request_id":"x"}}',
      '',
      '{"id":"y","sequence":"GG","organism":"yeast","parameters":{"k":1}}',
      '"TTT"',
    ].join('\n');
    const recs = parseInput(text, 'jsonl');
    assert.deepEqual(recs, [
      { id: 'x', sequence: 'AC' },
      { id: 'y', sequence: 'GG', organism: 'yeast', parameters: { k: 1 } },
      { id: 'seq3', sequence: 'TTT' },
    ]);
    assert.throws(
      () => parseInput('{"sequence":"A"}\n{nope', 'jsonl', 'in.jsonl'),
      (e: Error) => e instanceof InputFormatError && /in\.jsonl line 2: not valid JSON/.test(e.message),
    );
  });

  it('keeps a record without a sequence: it fails alone when the job runs', () => {
    const recs = parseInput('{"id":"a"}\n{"id":"b","sequence":"AC"}', 'jsonl');
    assert.equal(recs.length, 2);
    assert.equal(recs[0]!.sequence, undefined);
  });

  it('reads FASTA with the record id as request_id (multi-line sequences joined)', () => {
    const recs = parseInput('>seqA some description\nACGT\nAC\n>seqB\nGG\n', 'fasta');
    assert.deepEqual(recs, [
      { id: 'seqA', sequence: 'ACGTAC' },
      { id: 'seqB', sequence: 'GG' },
    ]);
    assert.throws(() => parseInput('ACGT\n>x\nAC', 'fasta'), InputFormatError);
  });

  it('reads CSV with quoting, parameters columns and a JSON parameters column', () => {
    const csv =
      'ID,Sequence,organism,parameters,parameters.window\r\nr1,ACGT,human,"{""method"":""sharp_li""}",5\r\n"r,2","AC\nGT",,,\n';
    const recs = parseInput(csv, 'csv');
    assert.deepEqual(recs, [
      { id: 'r1', sequence: 'ACGT', organism: 'human', parameters: { method: 'sharp_li', window: 5 } },
      { id: 'r,2', sequence: 'AC\nGT' },
    ]);
    assert.throws(
      () => parseInput('id,name\n1,2', 'csv', 'x.csv'),
      /x\.csv: the header row needs a "sequence" or an "input" column/,
    );
    assert.throws(() => parseDelimited('a,"b', ','), /unterminated/);
  });

  it('reads TSV and plain one-per-line text', () => {
    assert.deepEqual(parseInput('seq\tid\nAC\tone\nGT\ttwo\n', 'tsv'), [
      { id: 'one', sequence: 'AC' },
      { id: 'two', sequence: 'GT' },
    ]);
    assert.deepEqual(parseInput('# comment\nAC\n\nGT\n', 'text'), [
      { id: 'seq1', sequence: 'AC' },
      { id: 'seq2', sequence: 'GT' },
    ]);
  });

  it('picks the format from the file name, the content type or the content', () => {
    assert.equal(formatFromFileName('x.FASTA'), 'fasta');
    assert.equal(formatFromFileName('x.fa'), 'fasta');
    assert.equal(formatFromFileName('x.ndjson'), 'jsonl');
    assert.equal(formatFromFileName('x.tsv'), 'tsv');
    assert.equal(formatFromFileName('x.bin'), undefined);
    assert.equal(formatFromContentType('text/csv; charset=utf-8'), 'csv');
    assert.equal(formatFromContentType('application/x-ndjson'), 'jsonl');
    assert.equal(formatFromContentType('text/x-fasta'), 'fasta');
    assert.equal(formatFromContentType('text/plain'), undefined);
    assert.equal(sniffFormat('\n>a\nAC'), 'fasta');
    assert.equal(sniffFormat('[{"input":{}}]'), 'json');
    assert.equal(sniffFormat('{"input":{"sequence":"A"}}'), 'json');
    assert.equal(sniffFormat('{"sequence":"A"}\n{"sequence":"C"}\n'), 'jsonl');
    assert.equal(sniffFormat('id,sequence\n1,AC'), 'csv');
    assert.equal(sniffFormat('sequence\tid\nAC\t1'), 'tsv');
    assert.equal(sniffFormat('ACGT\nGGCC'), 'text');
  });
});

/** Feeds `text` to an incremental parser in pieces of `size` characters. */
function inPieces(text: string, format: InputFormat, size: number, label = 'input'): InputRecord[] {
  const p = recordParser(format, label);
  const out: InputRecord[] = [];
  for (let i = 0; i < text.length; i += size) out.push(...p.push(text.slice(i, i + size)));
  out.push(...p.end());
  return out;
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe('job input formats, read piece by piece (uploads are parsed as they are read back)', () => {
  const samples: [InputFormat, string][] = [
    ['fasta', '\uFEFF>seqA some description\r\nACGT\r\nAC \n;comment\n\n>seqB\nGG\n>empty\n>seqC\nTT'],
    ['text', '# comment\r\nACGT\n\n  GGCC  \nTT'],
    ['text', '\n\n>fa one\nAC\nGT\n'],
    [
      'csv',
      'ID,Sequence,organism,parameters,parameters.window\r\nr1,ACGT,human,"{""method"":""sharp_li""}",5\r\n"r,2","AC\nGT",,,\n"q""uoted",AC""x,,,\r\n',
    ],
    ['tsv', 'seq\tid\tparam.k\nAC\tone\t{"a":[1,2]}\r\nGT\ttwo\t\n'],
    [
      'jsonl',
      '{"input":{"sequence":"AC"},"metadata":{"request_id":"x"}}\r\n\n{"id":"y","sequence":"GG","parameters":{"k":"a\\"b"}}\n"TTT"\n{"input":{"sequences":["A","C"]}}',
    ],
    [
      'json',
      ' [ {"input":{"sequence":"A[C,"}} , {"input":{"sequences":["G}G",{"id":"own","sequence":"T\\"]"}]},"metadata":{"request_id":"m"}}, "AC" ] \n',
    ],
    ['json', '{"task":"t","input":{"sequences":["AC","GT"]},"metadata":{"request_id":"r"}}'],
    ['json', '[]'],
  ];

  it('gives the same records whatever the pieces the text arrives in', () => {
    for (const [format, text] of samples) {
      const whole = parseInput(text, format);
      assert.ok(whole.length > 0 || text === '[]', `${format}: the sample has records`);
      for (let size = 1; size <= text.length; size++)
        assert.deepEqual(inPieces(text, format, size), whole, `${format} in pieces of ${size}`);
    }
  });

  it('reports the same error with its line whatever the pieces', () => {
    const bad: [InputFormat, string, RegExp][] = [
      ['jsonl', '{"sequence":"A"}\r\n\n{nope\n', /^in line 3: not valid JSON/],
      ['fasta', '\n\nACGT\n>x\nAC', /^in line 3: FASTA data before the first ">" header/],
      ['csv', 'id,sequence\n1,"AC', /^in: unterminated quoted field/],
      ['csv', 'id,name\n1,2', /^in: the header row needs a "sequence" or an "input" column/],
      ['csv', 'sequence,parameters\nAC,[1]\n', /^in row 2: parameters must be a JSON object/],
      ['json', '[{"sequence":"A"},{nope}]', /^in\[1\]: not valid JSON/],
      ['json', '[{"sequence":"A"},]', /^in\[1\]: not valid JSON \(an empty element\)/],
      ['json', '[{"sequence":"A"}', /^in: not valid JSON \(the array is not closed\)/],
      ['json', '[{"sequence":"A"}] x', /^in: not valid JSON \(text after the closing "\]"\)/],
      ['json', '   ', /^in: not valid JSON/],
    ];
    for (const [format, text, re] of bad) {
      assert.match(
        errorOf(() => parseInput(text, format, 'in')),
        re,
        `${format} whole: ${text}`,
      );
      for (let size = 1; size <= text.length; size++)
        assert.match(
          errorOf(() => inPieces(text, format, size, 'in')),
          re,
          `${format} in pieces of ${size}: ${text}`,
        );
    }
  });

  it('reads one very long line in linear time (a chromosome on one line)', () => {
    const seq = 'ACGT'.repeat(2_000_000);
    const text = `>chr1\n${seq}\n`;
    const recs = inPieces(text, 'fasta', 64 * 1024);
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.sequence, seq);
  });

  it('keeps request-controlled names as plain keys: no prototype reached or changed', () => {
    const [rec] = parseInput('sequence,parameters.__proto__,parameters.constructor\nAC,{"polluted":1},7\n', 'csv');
    const params = rec!.parameters!;
    assert.equal(Object.getPrototypeOf(params), Object.prototype);
    assert.deepEqual(Object.keys(params), ['__proto__', 'constructor']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(params, '__proto__')!.value, { polluted: 1 });
    assert.equal(params.constructor, 7);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(formatFromFileName('x.constructor'), undefined);
    assert.equal(formatFromFileName('x.__proto__'), undefined);
    // CSV output: step or output fields named like Object.prototype members are columns like any other.
    const r: OutputRecord = {
      task: 't',
      status: 'success',
      output: JSON.parse('{"constructor":{"v":1},"toString":2,"__proto__":3}'),
      metadata: meta(0),
    };
    const rows = parseDelimited(toCsv([r]), ',');
    assert.deepEqual(rows[0]!.slice(-3), ['constructor', 'toString', '__proto__']);
    assert.deepEqual(rows[1]!.slice(-3), ['{"v":1}', '2', '3']);
  });

  it('sniffs the start of a long input without trusting its cut last line', () => {
    assert.equal(sniffFormat('{"sequence":"A"}\n{"sequence":"C"}\n{"sequ', true), 'jsonl');
    assert.equal(sniffFormat('{"sequence":"A"}\n{"sequ', false), 'json');
    assert.equal(sniffFormat('\uFEFF>a\nAC'), 'fasta');
  });
});

/** Scans a JSON object in pieces of `size`: its members parsed, its `sequences` entries parsed. */
function scanInPieces(text: string, size: number): { members: Record<string, unknown>; entries: unknown[] } {
  const members: Record<string, unknown> = {};
  const entries: unknown[] = [];
  const s = new JsonObjectScanner(new Set(['sequences', 'inputs']), {
    member: (k, t) => (members[k] = JSON.parse(t)),
    entry: (_k, t, i) => {
      assert.equal(i, entries.length);
      entries.push(JSON.parse(t));
    },
  });
  for (let i = 0; i < text.length; i += size) s.push(text.slice(i, i + size));
  s.end();
  return { members, entries };
}

describe('JSON submissions, read piece by piece', () => {
  const body = JSON.stringify({
    options: { window: 4, nested: { a: [1, '},]"\\'] } },
    sequences: [
      'ACGT',
      { id: 'x,y', sequence: 'G]C' },
      { input: { sequences: ['A', 'C'] }, metadata: { request_id: '{r}' } },
    ],
    model: 'revcomp',
    name: 'quote " and \\ and }',
    chunk_size: 5,
  });

  it('splits the members and the list entries the same way whatever the pieces', () => {
    const whole = JSON.parse(body);
    const { sequences, ...rest } = whole;
    for (let size = 1; size <= body.length; size++) {
      const got = scanInPieces(body, size);
      assert.deepEqual(got.members, rest, `pieces of ${size}`);
      assert.deepEqual(got.entries, sequences, `pieces of ${size}`);
    }
    assert.deepEqual(scanInPieces('  {"sequences" : [ ] , "model":"m"}  ', 3), {
      members: { model: 'm' },
      entries: [],
    });
    assert.deepEqual(scanInPieces('{"sequences":"not a list"}', 2), {
      members: { sequences: 'not a list' },
      entries: [],
    });
  });

  it('refuses what is not one JSON object, a key given twice, nesting over the limit', () => {
    const cases: [string, RegExp][] = [
      ['', /the body is empty/],
      ['[{"model":"m"}]', /a job submission is a JSON object/],
      ['{"model":"m","model":"n"}', /"model" is given twice/],
      ['{"model":"m",}', /a key after ","/],
      ['{"model":"m"} {}', /text after the closing "}"/],
      ['{"model":"m"', /the object is not closed/],
      ['{"sequences":["A",,"C"]}', /sequences\[1\] is empty/],
      ['{"sequences":["A"}', /"}" in sequences/],
      ['{"model" "m"}', /":" after a key/],
      [
        `{"options":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`,
        new RegExp(`nests deeper than ${MAX_JSON_DEPTH} levels`),
      ],
      [
        `{"sequences":[${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}]}`,
        new RegExp(`nests deeper than ${MAX_JSON_DEPTH} levels`),
      ],
    ];
    for (const [text, re] of cases) {
      for (const size of [1, 3, text.length || 1])
        assert.match(
          errorOf(() => scanInPieces(text, size)),
          re,
          `${text.slice(0, 40)} in pieces of ${size}`,
        );
    }
    // At the limit itself: accepted (the object is one level, as for the gateway's JSON parser).
    assert.doesNotThrow(() =>
      scanInPieces(`{"options":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}}`, 7),
    );
  });

  it('hashes a submission as before it was streamed: canonical JSON, whatever the key order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-jsonhash-'));
    try {
      const intake = new JobIntake(
        null as unknown as JobRunner,
        dir,
        { maxUploadBytes: 1 << 20, maxQueuedJobs: 1, maxQueuedRecords: 1 },
        pino({ level: 'silent' }),
      );
      const hashOf = async (text: string): Promise<string> => {
        const path = join(dir, `${Math.random()}.json`);
        writeFileSync(path, text);
        const upload: Upload = { path, bytes: text.length, dispose: async () => undefined };
        return intake.hashJson(upload, await intake.scanJson(upload), submissionHash('json', '{}'));
      };
      // What the route computed when the whole body was parsed first.
      const before = createHash('sha256')
        .update('json\0{}\0')
        .update(canonical(JSON.parse(body)))
        .digest('hex');
      assert.equal(await hashOf(body), before);
      const reordered = JSON.stringify({
        chunk_size: 5,
        name: 'quote " and \\ and }',
        model: 'revcomp',
        sequences: JSON.parse(body).sequences,
        options: { nested: { a: [1, '},]"\\'] }, window: 4 },
      });
      assert.equal(await hashOf(reordered), before);
      assert.notEqual(await hashOf(body.replace('ACGT', 'ACGA')), before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('job output formats', () => {
  const ok: OutputRecord = { task: 't', status: 'success', output: { a: 1, nested: { b: [1, 2] } }, metadata: meta(0) };
  const bad: OutputRecord = {
    task: 't',
    status: 'error',
    error: { code: 'INVALID_SEQUENCE', message: 'bad "x", here' },
    metadata: meta(1),
  };

  it('writes CSV: fixed columns, then output fields, nested values as JSON, quoting', () => {
    const csv = toCsv([ok, bad]);
    const rows = parseDelimited(csv, ',');
    assert.deepEqual(rows[0], [
      'index',
      'request_id',
      'task',
      'status',
      'service',
      'version',
      'processing_time_ms',
      'error_code',
      'error_message',
      'a',
      'nested',
    ]);
    assert.deepEqual(rows[1], ['0', 's0', 't', 'success', 'm', '1.0.0', '1.5', '', '', '1', '{"b":[1,2]}']);
    assert.deepEqual(rows[2], [
      '1',
      's1',
      't',
      'error',
      'm',
      '1.0.0',
      '1.5',
      'INVALID_SEQUENCE',
      'bad "x", here',
      '',
      '',
    ]);
    assert.deepEqual(CsvWriter.fieldsOf([bad, ok]), ['a', 'nested']);
  });

  it('gives an exchange output file per input object: single, or aggregated for sequences', () => {
    assert.deepEqual(exchangeRecord(ok), {
      task: 't',
      status: 'success',
      output: ok.output,
      metadata: { request_id: 's0', processing_time_ms: 1.5, service: 'm', version: '1.0.0' },
    });
    const agg = aggregateRecord('t', 'req', [ok, bad]) as any;
    assert.equal(agg.status, 'error');
    assert.equal(agg.error.code, 'PARTIAL_FAILURE');
    assert.deepEqual(
      agg.output.results.map((r: any) => r.status),
      ['success', 'error'],
    );
    assert.equal(agg.output.successful, 1);
    assert.equal(agg.metadata.request_id, 'req');
    assert.equal((aggregateRecord('t', 'req', [ok]) as any).status, 'success');
  });
});

describe('typed job records (any input type)', () => {
  it('reads JSONL records with an input of any type beside sequence records', () => {
    const lines = [
      '{"id":"t","task":"words","input":"hello world"}',
      '{"id":"j","task":"patient","input":{"symptoms":["a"],"patient_info":{"age":3}},"parameters":{"temperature":0.7}}',
      '{"id":"x","task":"add","input":{"a":[[1,2]],"b":[0,0]}}',
      '{"id":"c","task":"chat","input":{"messages":[{"role":"user","content":"hi"}]}}',
      '{"id":"i","task":"look","input":{"data":"aGk=","format":"png"}}',
      '{"id":"s","sequence":"ACGT"}',
      '{"input":{"sequence":"AC","organism":"human"},"metadata":{"request_id":"legacy"}}',
    ];
    assert.deepEqual(parseInput(lines.join('\n'), 'jsonl'), [
      { id: 't', task: 'words', input: 'hello world' },
      {
        id: 'j',
        task: 'patient',
        parameters: { temperature: 0.7 },
        input: { symptoms: ['a'], patient_info: { age: 3 } },
      },
      { id: 'x', task: 'add', input: { a: [[1, 2]], b: [0, 0] } },
      { id: 'c', task: 'chat', input: { messages: [{ role: 'user', content: 'hi' }] } },
      { id: 'i', task: 'look', input: { data: 'aGk=', format: 'png' } },
      { id: 's', sequence: 'ACGT' },
      { id: 'legacy', organism: 'human', sequence: 'AC' },
    ]);
  });

  it('tells the exchange wrapper from an input: sequence keys, or input/inputs with wrapper keys only', () => {
    assert.equal(isExchangeWrapper({ sequence: 'AC', extra: 1 }), true, 'seed 003 wrapper, as before');
    assert.equal(isExchangeWrapper({ sequences: ['AC'] }), true);
    assert.equal(isExchangeWrapper({ input: 'hi', parameters: { k: 1 } }), true);
    assert.equal(isExchangeWrapper({ inputs: ['a', 'b'], organism: 'x' }), true);
    assert.equal(isExchangeWrapper({ input: [[1, 2]], other: [0] }), false, 'tensors named input and other');
    assert.equal(isExchangeWrapper({ symptoms: ['a'] }), false);
    assert.equal(isExchangeWrapper('hello'), false);
    assert.equal(isExchangeWrapper(['a']), false);
    // The exchange format with `inputs`: one record per entry, named request_id#n, parameters shared.
    const x = parseExchangeObject(
      { task: 'words', input: { inputs: ['a b', 'c'], parameters: { k: 1 } }, metadata: { request_id: 'w' } },
      'f',
      'f.json',
    );
    assert.equal(x.multi, true);
    assert.deepEqual(x.records, [
      { task: 'words', parameters: { k: 1 }, id: 'w#1', input: 'a b' },
      { task: 'words', parameters: { k: 1 }, id: 'w#2', input: 'c' },
    ]);
    // Seed 002's shape as an exchange object: the input is the JSON object, parameters beside it.
    const p = parseExchangeObject(
      {
        task: 'patient',
        input: { symptoms: ['头痛'] },
        parameters: { temperature: 0.7 },
        metadata: { request_id: 'p1' },
      },
      'f',
      'f.json',
    );
    assert.deepEqual(p.records, [
      { task: 'patient', parameters: { temperature: 0.7 }, id: 'p1', input: { symptoms: ['头痛'] } },
    ]);
    // A JSON input that looks like a wrapper is wrapped once more, and unwrapped once.
    assert.deepEqual(parseExchangeObject({ input: { input: { sequence: 'not a wrapper' } } }, 'f', 'f').records, [
      { id: 'f', input: { sequence: 'not a wrapper' } },
    ]);
    assert.throws(
      () => parseExchangeObject({ input: { input: 'a', sequence: 'AC' } }, 'f', 'f.json'),
      /f\.json: give one of input\.sequence, sequences, input or inputs \(got input and sequence\)/,
    );
    assert.throws(
      () => parseExchangeObject({ input: 'a', sequence: 'AC' }, 'f', 'l'),
      /give one of sequence, sequences, input or inputs/,
    );
    assert.throws(() => parseExchangeObject({ input: { inputs: [] } }, 'f', 'l'), /inputs must be a non-empty array/);
  });

  it('recordObject spells a record so that it reads back the same, whatever its input looks like', () => {
    const records: InputRecord[] = [
      { id: 'a', sequence: 'ACGT', task: 't', organism: 'human', parameters: { k: 1 } },
      { id: 'b', input: 'hello' },
      { id: 'c', input: { sequence: 'x' }, parameters: { z: 2 } },
      { id: 'd', input: { input: [[1, 2]] }, task: 'add' },
      { id: 'e', input: { inputs: ['not', 'a list of records'] } },
      { id: 'f', input: ['a'] },
      { id: 'g', sequence: undefined },
    ];
    for (const r of records)
      assert.deepEqual(
        parseExchangeObject(JSON.parse(JSON.stringify(recordObject(r))), 'fallback', 'x').records,
        [r],
        JSON.stringify(r),
      );
  });

  it('reads CSV / TSV with an input column (text), and sniffs it', () => {
    assert.deepEqual(parseInput('id,input,task\nr1,"hello, world",words\nr2,,words\n', 'csv'), [
      { id: 'r1', input: 'hello, world', task: 'words' },
      { id: 'r2', input: '', task: 'words' },
    ]);
    assert.deepEqual(parseInput('input\tid\nbonjour\tfr\n', 'tsv'), [{ id: 'fr', input: 'bonjour' }]);
    assert.throws(
      () => parseInput('sequence,input\nAC,x\n', 'csv', 'both.csv'),
      /both\.csv: the header row has both a "sequence" and an "input" column/,
    );
    assert.equal(sniffFormat('id,input\n1,hello'), 'csv');
    assert.equal(sniffFormat('input\tid\nhello\t1'), 'tsv');
  });
});
