// The file-exchange formats: every input format to records, the exchange output shapes, CSV.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  aggregateRecord,
  CsvWriter,
  exchangeRecord,
  formatFromContentType,
  formatFromFileName,
  InputFormatError,
  parseDelimited,
  parseExchangeObject,
  parseInput,
  sniffFormat,
  toCsv,
  type OutputRecord,
} from '../src/jobs/formats.js';

const meta = (index: number, request_id = `s${index}`) => ({ request_id, processing_time_ms: 1.5, service: 'm', version: '1.0.0', index });

describe('job input formats', () => {
  it('reads the exchange JSON: sequence, organism and parameters, request_id from metadata', () => {
    const recs = parseInput(JSON.stringify({ task: 'codon_optimize', input: { sequence: 'ATGC', organism: 'human', parameters: { method: 'sharp_li' } }, metadata: { request_id: 'task_001' } }), 'json');
    assert.deepEqual(recs, [{ id: 'task_001', sequence: 'ATGC', task: 'codon_optimize', organism: 'human', parameters: { method: 'sharp_li' } }]);
  });

  it('expands an exchange input with sequences into one record each, named request_id#n', () => {
    const x = parseExchangeObject({ task: 't', input: { sequences: ['AC', { id: 'own', sequence: 'GT' }, 'TT'] }, metadata: { request_id: 'r' } }, 'fallback', 'f.json');
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
    const recs = parseInput(JSON.stringify([{ input: { sequence: 'AA' } }, { input: { sequence: 'CC' }, metadata: { request_id: 'b' } }]), 'json');
    assert.deepEqual(
      recs.map((r) => [r.id, r.sequence]),
      [
        ['seq1', 'AA'],
        ['b', 'CC'],
      ],
    );
  });

  it('reads JSONL: exchange objects, flat records and bare strings; a bad line names its number', () => {
    const text = ['{"input":{"sequence":"AC"},"metadata":{"request_id":"x"}}', '', '{"id":"y","sequence":"GG","organism":"yeast","parameters":{"k":1}}', '"TTT"'].join('\n');
    const recs = parseInput(text, 'jsonl');
    assert.deepEqual(recs, [
      { id: 'x', sequence: 'AC' },
      { id: 'y', sequence: 'GG', organism: 'yeast', parameters: { k: 1 } },
      { id: 'seq3', sequence: 'TTT' },
    ]);
    assert.throws(() => parseInput('{"sequence":"A"}\n{nope', 'jsonl', 'in.jsonl'), (e: Error) => e instanceof InputFormatError && /in\.jsonl line 2: not valid JSON/.test(e.message));
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
    const csv = 'ID,Sequence,organism,parameters,parameters.window\r\nr1,ACGT,human,"{""method"":""sharp_li""}",5\r\n"r,2","AC\nGT",,,\n';
    const recs = parseInput(csv, 'csv');
    assert.deepEqual(recs, [
      { id: 'r1', sequence: 'ACGT', organism: 'human', parameters: { method: 'sharp_li', window: 5 } },
      { id: 'r,2', sequence: 'AC\nGT' },
    ]);
    assert.throws(() => parseInput('id,name\n1,2', 'csv', 'x.csv'), /x\.csv: the header row needs a "sequence" column/);
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

describe('job output formats', () => {
  const ok: OutputRecord = { task: 't', status: 'success', output: { a: 1, nested: { b: [1, 2] } }, metadata: meta(0) };
  const bad: OutputRecord = { task: 't', status: 'error', error: { code: 'INVALID_SEQUENCE', message: 'bad "x", here' }, metadata: meta(1) };

  it('writes CSV: fixed columns, then output fields, nested values as JSON, quoting', () => {
    const csv = toCsv([ok, bad]);
    const rows = parseDelimited(csv, ',');
    assert.deepEqual(rows[0], ['index', 'request_id', 'task', 'status', 'service', 'version', 'processing_time_ms', 'error_code', 'error_message', 'a', 'nested']);
    assert.deepEqual(rows[1], ['0', 's0', 't', 'success', 'm', '1.0.0', '1.5', '', '', '1', '{"b":[1,2]}']);
    assert.deepEqual(rows[2], ['1', 's1', 't', 'error', 'm', '1.0.0', '1.5', 'INVALID_SEQUENCE', 'bad "x", here', '', '']);
    assert.deepEqual(CsvWriter.fieldsOf([bad, ok]), ['a', 'nested']);
  });

  it('gives an exchange output file per input object: single, or aggregated for sequences', () => {
    assert.deepEqual(exchangeRecord(ok), { task: 't', status: 'success', output: ok.output, metadata: { request_id: 's0', processing_time_ms: 1.5, service: 'm', version: '1.0.0' } });
    const agg = aggregateRecord('t', 'req', [ok, bad]) as any;
    assert.equal(agg.status, 'error');
    assert.equal(agg.error.code, 'PARTIAL_FAILURE');
    assert.deepEqual(agg.output.results.map((r: any) => r.status), ['success', 'error']);
    assert.equal(agg.output.successful, 1);
    assert.equal(agg.metadata.request_id, 'req');
    assert.equal((aggregateRecord('t', 'req', [ok]) as any).status, 'success');
  });
});
