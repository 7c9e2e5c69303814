// The job API through a real gateway on loopback: submission (inline, exchange objects, raw
// uploads), progress, results streamed in input order, CSV, cancel, list, idempotency, pipelines,
// a sequence that crashes its worker failing only its own record, a large upload parsed while
// other requests are answered; with API keys: jobs belong to the key that submitted them,
// Idempotency-Keys per key, the upload size limit and the per-key quotas.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, startGateway, waitFor, type Harness } from './helpers.js';

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A', N: 'N' };
const rc = (s: string): string =>
  s
    .toUpperCase()
    .split('')
    .reverse()
    .map((c) => COMP[c])
    .join('');

function lines(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

describe('job API', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp', 'gc-scanner', 'slow-node', 'chaos-py']);
  });
  after(async () => h.close());

  const done = (id: string, timeoutMs = 30_000) =>
    waitFor(async () => {
      const r = await h.get(`/v1/jobs/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(r.body.data.status) ? r.body.data : null;
    }, timeoutMs);

  it('runs inline sequences; bad ones are recorded at their positions; results in input order', async () => {
    const seqs = Array.from({ length: 150 }, (_, i) => 'ACGTTGCA'.slice(i % 5) + 'GATTACA'.slice(0, 1 + (i % 7)));
    seqs[3] = 'ACGTXX';
    seqs[77] = '';
    const r = await h.post('/v1/jobs', { model: 'revcomp', sequences: seqs, chunk_size: 16, name: 'inline' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.success, true);
    const job = r.body.data;
    assert.equal(r.headers.get('location'), `/v1/jobs/${job.id}`);
    assert.equal(job.total, 150);
    assert.equal(job.task, 'reverse_complement');
    assert.equal(job.chunk_size, 16);
    const final = await done(job.id);
    assert.equal(final.status, 'succeeded');
    assert.deepEqual([final.done, final.successful, final.failed, final.pending, final.progress], [150, 148, 2, 0, 1]);
    assert.ok(final.started_at && final.finished_at);
    const res = await fetch(`${h.url}/v1/jobs/${job.id}/results`);
    assert.match(res.headers.get('content-type')!, /application\/x-ndjson/);
    const recs = lines(await res.text());
    assert.equal(recs.length, 150);
    recs.forEach((rec, i) => {
      assert.equal(rec.metadata.index, i);
      assert.equal(rec.metadata.request_id, `seq${i + 1}`);
      assert.equal(rec.metadata.service, 'revcomp');
      assert.equal(rec.metadata.version, '1.0.0');
      assert.equal(typeof rec.metadata.processing_time_ms, 'number');
      assert.equal(rec.task, 'reverse_complement');
      if (i === 3 || i === 77) {
        assert.equal(rec.status, 'error');
        assert.equal(rec.error.code, 'INVALID_SEQUENCE');
        assert.equal(rec.output, undefined);
      } else {
        assert.equal(rec.status, 'success');
        assert.equal(rec.output.reverse_complement, rc(seqs[i]!));
      }
    });
  });

  it('takes exchange objects: per-record task, organism/parameters as model options, request_id', async () => {
    const inputs = [
      {
        task: 'gc_content',
        input: { sequence: 'GGGGAAAA', parameters: { window: 4 } },
        metadata: { request_id: 'task_001' },
      },
      { task: 'motif_scan', input: { sequence: 'TTGACAATTATAATG' }, metadata: { request_id: 'task_002' } },
      { input: { sequences: ['GC', 'AT'] }, metadata: { request_id: 'multi' } },
    ];
    const r = await h.post('/v1/jobs', { model: 'gc-scanner', task: 'gc_content', inputs });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await done(r.body.data.id);
    const recs = lines((await h.get(`/v1/jobs/${r.body.data.id}/results`)).body as string);
    assert.deepEqual(
      recs.map((x) => [x.metadata.request_id, x.task, x.status]),
      [
        ['task_001', 'gc_content', 'success'],
        ['task_002', 'motif_scan', 'success'],
        ['multi#1', 'gc_content', 'success'],
        ['multi#2', 'gc_content', 'success'],
      ],
    );
    assert.deepEqual(recs[0].output.windows, [1, 0]);
    assert.equal(recs[1].output.count, 3);
    assert.equal(recs[2].output.gc_content, 1);
  });

  it('takes a raw FASTA body by content type, and CSV / JSONL file text by format field', async () => {
    const fasta = await h.post('/v1/jobs?model=revcomp', '>one first\nACGG\nTT\n>two\nNNAC\n', {
      'content-type': 'text/x-fasta',
    });
    assert.equal(fasta.status, 202, JSON.stringify(fasta.body));
    await done(fasta.body.data.id);
    const f = lines((await h.get(`/v1/jobs/${fasta.body.data.id}/results`)).body as string);
    assert.deepEqual(
      f.map((x) => [x.metadata.request_id, x.output.reverse_complement]),
      [
        ['one', rc('ACGGTT')],
        ['two', 'GTNN'],
      ],
    );

    const csv = await h.post('/v1/jobs', {
      model: 'gc-scanner',
      task: 'gc_content',
      format: 'csv',
      data: 'id,sequence,parameters.window\nr1,GGAA,2\nr2,ATAT,\n',
    });
    assert.equal(csv.status, 202, JSON.stringify(csv.body));
    await done(csv.body.data.id);
    const c = lines((await h.get(`/v1/jobs/${csv.body.data.id}/results`)).body as string);
    assert.deepEqual(c[0].output.windows, [1, 0]);
    assert.equal(c[1].output.windows, undefined);

    const jsonl = await h.post(
      '/v1/jobs?model=revcomp&format=jsonl',
      '{"id":"a","sequence":"AAC"}\n{"id":"b","sequence":"GGT"}\n',
      { 'content-type': 'text/plain' },
    );
    assert.equal(jsonl.status, 202, JSON.stringify(jsonl.body));
    await done(jsonl.body.data.id);
    const j = lines((await h.get(`/v1/jobs/${jsonl.body.data.id}/results`)).body as string);
    assert.deepEqual(
      j.map((x) => x.output.reverse_complement),
      ['GTT', 'ACC'],
    );
  });

  it('rejects bad submissions with the envelope', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ model: 'nope', sequences: ['AC'] }, 404, /no model named "nope"/],
      [
        { model: 'gc-scanner', sequences: [{ id: 'x', sequence: 'AC', task: 'folding' }] },
        400,
        /has no task "folding"/,
      ],
      [{ model: 'revcomp', task: 'bogus', sequences: ['AC'] }, 400, /has no task "bogus"/],
      [{ model: 'revcomp', sequences: [] }, 400, /no sequences/],
      [{ model: 'revcomp', sequences: ['AC'], data: 'AC' }, 400, /exactly one of sequences/],
      [{ sequences: ['AC'] }, 400, /exactly one of model/],
      [{ model: 'revcomp', format: 'jsonl', data: '{"sequence": "AC"}\n{oops' }, 400, /data line 2: not valid JSON/],
      [{ model: 'revcomp', sequences: ['AC'], workers: 0 }, 400, /workers/],
      [{ pipeline: { steps: [{ model: 'revcomp', sequence: 'x.y' }] }, sequences: ['AC'] }, 400, /invalid pipeline/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await h.post('/v1/jobs', body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.success, false);
      assert.match(r.body.message, msg);
    }
    // JSON that is not one object with each key once.
    const text: [string, RegExp][] = [
      ['{"model":"revcomp","model":"gc-scanner","sequences":["AC"]}', /"model" is given twice/],
      ['{"model":"revcomp","sequences":["AC"]} []', /text after the closing "}"/],
      ['[{"model":"revcomp","sequences":["AC"]}]', /a job submission is a JSON object/],
      ['{"model":"revcomp","sequences":["AC",{oops}]}', /sequences\[1\]: not valid JSON/],
      ['{"model":"revcomp","sequences":["AC"],"__proto__":{"x":1}}', /Unrecognized key/],
    ];
    for (const [body, msg] of text) {
      const r = await h.post('/v1/jobs', body);
      assert.equal(r.status, 400, `${body}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.message, msg);
    }
    const raw = await h.post('/v1/jobs', '>a\nAC\n', { 'content-type': 'text/x-fasta' });
    assert.equal(raw.status, 400);
    assert.match(raw.body.message, /names the model and task in the query string/);
    assert.equal((await h.get('/v1/jobs/nope')).status, 404);
    assert.equal((await h.post('/v1/jobs/nope/cancel')).status, 404);
  });

  it('is idempotent by Idempotency-Key: same body, same job; another body, 409', async () => {
    const key = { 'idempotency-key': `k-${Date.now()}` };
    const a = await h.post(
      '/v1/jobs',
      { model: 'revcomp', sequences: ['ACGT', 'GG'], options: { chunk_size: 5 } },
      key,
    );
    assert.equal(a.status, 202);
    // Same content, keys in another order: the same request.
    const b = await h.post(
      '/v1/jobs',
      { options: { chunk_size: 5 }, sequences: ['ACGT', 'GG'], model: 'revcomp' },
      key,
    );
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    assert.equal(b.body.data.id, a.body.data.id);
    const c = await h.post('/v1/jobs', { model: 'revcomp', sequences: ['ACGT', 'GA'] }, key);
    assert.equal(c.status, 409);
    assert.equal(c.body.success, false);
    assert.equal(c.body.error.code, 'IDEMPOTENCY_CONFLICT');
    assert.equal(c.body.error.details.job_id, a.body.data.id);
    assert.match(c.body.message, /different request body/);
    const list = await h.get('/v1/jobs?limit=1000');
    assert.equal(list.body.data.jobs.filter((j: any) => j.idempotency_key === key['idempotency-key']).length, 1);
    assert.equal(
      (await h.post('/v1/jobs', { model: 'revcomp', sequences: ['A'] }, { 'idempotency-key': 'bad key' })).status,
      400,
    );
  });

  it('streams results while the job runs, in input order', async () => {
    // slow-node answers each batch of 8 after delay_ms: 10 batches, one at a time.
    const seqs = Array.from({ length: 80 }, (_, i) => 'ACGT'.repeat(1 + (i % 5)));
    const r = await h.post('/v1/jobs', {
      model: 'slow-node',
      sequences: seqs,
      options: { delay_ms: 150 },
      workers: 1,
      chunk_size: 8,
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = r.body.data.id;
    const res = await fetch(`${h.url}/v1/jobs/${id}/results`);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let statusAtFirst: any = null;
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      text += decoder.decode(value, { stream: true });
      if (!statusAtFirst && text.includes('\n')) statusAtFirst = (await h.get(`/v1/jobs/${id}`)).body.data;
    }
    assert.ok(statusAtFirst.done < 80, `the first records arrived while the job ran (done ${statusAtFirst.done})`);
    assert.equal(statusAtFirst.status, 'running');
    assert.ok(statusAtFirst.rate_per_s === null || statusAtFirst.rate_per_s > 0);
    const recs = lines(text);
    assert.equal(recs.length, 80);
    recs.forEach((x, i) => {
      assert.equal(x.metadata.index, i);
      assert.equal(x.output.length, seqs[i]!.length);
    });
    // ?from= resumes a stream; CSV once done.
    const tail = lines((await h.get(`/v1/jobs/${id}/results?from=75`)).body as string);
    assert.deepEqual(
      tail.map((x) => x.metadata.index),
      [75, 76, 77, 78, 79],
    );
    const csv = await fetch(`${h.url}/v1/jobs/${id}/results?format=csv&download=true`);
    assert.match(csv.headers.get('content-type')!, /text\/csv/);
    assert.match(csv.headers.get('content-disposition')!, new RegExp(`attachment; filename="${id}.csv"`));
    const rows = (await csv.text()).trim().split('\n');
    assert.equal(rows.length, 81);
    assert.match(
      rows[0]!,
      /^index,request_id,task,status,service,version,processing_time_ms,error_code,error_message,length/,
    );
  });

  it('cancels a running job; CSV waits for the end; the list filters by status', async () => {
    const seqs = Array.from({ length: 200 }, () => 'ACGT');
    const r = await h.post('/v1/jobs', {
      model: 'slow-node',
      sequences: seqs,
      options: { delay_ms: 100 },
      workers: 1,
      chunk_size: 8,
    });
    const id = r.body.data.id;
    await waitFor(async () => (await h.get(`/v1/jobs/${id}`)).body.data.done > 0, 20_000);
    const early = await h.get(`/v1/jobs/${id}/results?format=csv`);
    assert.equal(early.status, 409);
    assert.equal(early.body.error.code, 'JOB_NOT_FINISHED');
    const c = await h.post(`/v1/jobs/${id}/cancel`);
    assert.equal(c.status, 200);
    assert.equal(c.body.data.status, 'cancelled');
    assert.equal(c.body.message, 'job cancelled');
    const again = await h.post(`/v1/jobs/${id}/cancel`);
    assert.match(again.body.message, /already been cancelled/);
    await new Promise((res) => setTimeout(res, 300));
    const after = (await h.get(`/v1/jobs/${id}`)).body.data;
    assert.equal(after.status, 'cancelled');
    assert.ok(after.done < 200);
    const recs = lines((await h.get(`/v1/jobs/${id}/results`)).body as string);
    assert.equal(recs.length, after.done, 'the stream of a cancelled job ends with the records it has');
    const list = await h.get('/v1/jobs?status=cancelled');
    assert.ok(list.body.data.jobs.some((j: any) => j.id === id));
    assert.ok(list.body.data.jobs.every((j: any) => j.status === 'cancelled'));
    assert.equal((await h.get('/v1/jobs?status=bogus')).status, 400);
  });

  it('runs a pipeline job: each step on its own model, fields mapped between steps', async () => {
    const pipeline_yaml = [
      'name: rc-then-gc',
      'steps:',
      '  - name: rc',
      '    model: revcomp',
      '  - name: gc',
      '    model: gc-scanner',
      '    task: gc_content',
      '    sequence: rc.reverse_complement',
      '    options: { window: 2 }',
    ].join('\n');
    const r = await h.post('/v1/jobs', { pipeline_yaml, sequences: ['AAGG', 'ACXX', 'CCCA'] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.data.kind, 'pipeline');
    assert.equal(r.body.data.pipeline, 'rc-then-gc');
    await done(r.body.data.id);
    const recs = lines((await h.get(`/v1/jobs/${r.body.data.id}/results`)).body as string);
    assert.equal(recs[0].status, 'success');
    assert.equal(recs[0].output.rc.reverse_complement, 'CCTT');
    assert.deepEqual(recs[0].output.gc.windows, [1, 0]);
    assert.equal(recs[0].task, 'pipeline:rc-then-gc');
    assert.deepEqual(
      recs[0].metadata.steps.map((s: any) => s.model),
      ['revcomp', 'gc-scanner'],
    );
    assert.equal(recs[1].status, 'error');
    assert.equal(recs[1].error.step, 'rc');
    assert.equal(recs[2].output.gc.gc_content, 0.75);
  });

  it('keeps every pipeline step output whatever the step is called; "__proto__" is refused with a clear error', async () => {
    const pipeline_yaml = (first: string, second: string) =>
      [
        'name: names',
        'steps:',
        `  - name: ${first}`,
        '    model: revcomp',
        `  - name: ${second}`,
        '    model: revcomp',
        `    sequence: ${first}.reverse_complement`,
      ].join('\n');
    const r = await h.post('/v1/jobs', {
      pipeline_yaml: pipeline_yaml('constructor', 'toString'),
      sequences: ['AAGG', 'ACGTT'],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await done(r.body.data.id);
    const recs = lines((await h.get(`/v1/jobs/${r.body.data.id}/results`)).body as string);
    assert.deepEqual(
      recs.map((x) => [
        x.status,
        Object.keys(x.output),
        x.output.constructor.reverse_complement,
        x.output.toString.reverse_complement,
      ]),
      [
        ['success', ['constructor', 'toString'], 'CCTT', 'AAGG'],
        ['success', ['constructor', 'toString'], 'AACGT', 'ACGTT'],
      ],
    );
    const csv = (await (await fetch(`${h.url}/v1/jobs/${r.body.data.id}/results?format=csv`)).text())
      .trim()
      .split('\n');
    assert.match(csv[0]!, /,constructor,toString$/);
    assert.match(csv[1]!, /,"\{""reverse_complement"":""CCTT"".*\}","\{""reverse_complement"":""AAGG"".*\}"$/);
    const bad = await h.post('/v1/jobs', { pipeline_yaml: pipeline_yaml('__proto__', 'next'), sequences: ['AAGG'] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_REQUEST');
    assert.match(bad.body.message, /steps\.0\.name: "__proto__" is reserved/);
  });

  /**
   * Sends predictions one after the other until `upload` is answered; counts those answered
   * while a submission had some, not all, of its `total` records stored.
   */
  async function predictWhile(
    upload: Promise<unknown>,
    total: number,
  ): Promise<{ before: number; whileStoring: number }> {
    const receiving = h.gw.store.db.prepare(`SELECT total FROM jobs WHERE status = 'receiving'`);
    let answered = false;
    void upload.finally(() => (answered = true));
    let before = 0;
    let whileStoring = 0;
    while (!answered) {
      const p = await request<any>(`${h.url}/models/revcomp/predict`, 'POST', { sequence: 'ACGTAC' });
      assert.equal(p.status, 200, JSON.stringify(p.body));
      assert.equal(p.body.data.reverse_complement, 'GTACGT');
      if (answered) break;
      before++;
      if ((receiving.all() as { total: number }[]).some((j) => j.total > 0 && j.total < total)) whileStoring++;
    }
    return { before, whileStoring };
  }

  it('streams a large FASTA upload to disk and stores it piece by piece: other clients are answered meanwhile', async (t) => {
    // ~24 MB, 200,000 records. Before, the body was parsed and stored in one synchronous block:
    // nothing else was answered until the upload's own answer.
    const n = 200_000;
    const parts: string[] = [];
    for (let i = 0; i < n; i++)
      parts.push(`>r${i} sample record ${i}\n${'ACGTTGCA'.repeat(12)}\n${'GATTACA'.slice(0, 1 + (i % 7))}\n`);
    const body = parts.join('');
    assert.ok(body.length > 20e6, `${body.length} bytes`);
    const upload = h.post('/v1/jobs?model=revcomp&name=big', body, { 'content-type': 'text/x-fasta' });
    const during = await predictWhile(upload, n);
    const res = await upload;
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.data.total, n);
    assert.ok(
      during.whileStoring >= 3,
      `${during.whileStoring} predictions answered while the upload's records were being stored (${during.before} before its answer)`,
    );
    t.diagnostic(
      `${during.before} predictions answered during the upload, ${during.whileStoring} of them while its records were being stored`,
    );
    const id = res.body.data.id;
    const input = (idx: number) =>
      JSON.parse(
        (
          h.gw.store.db.prepare('SELECT input FROM job_items WHERE job_id = ? AND idx = ?').get(id, idx) as {
            input: string;
          }
        ).input,
      );
    assert.deepEqual(input(0), { id: 'r0', sequence: 'ACGTTGCA'.repeat(12) + 'G' });
    assert.deepEqual(input(n - 1), {
      id: `r${n - 1}`,
      sequence: 'ACGTTGCA'.repeat(12) + 'GATTACA'.slice(0, 1 + ((n - 1) % 7)),
    });
    assert.deepEqual(readdirSync(join(h.stateDir, 'uploads')), [], 'the upload file is gone once stored');
    assert.equal((await h.post(`/v1/jobs/${id}/cancel`)).status, 200);
  });

  it('reads a large JSON submission piece by piece too (its list entry by entry), with its Idempotency-Key hash', async (t) => {
    const n = 100_000;
    const sequences = Array.from({ length: n }, (_, i) => ({
      id: `j${i}`,
      sequence: 'ACGTTGCA'.repeat(8) + 'ACG'.slice(0, i % 3),
    }));
    // The list first, the model last: the members are read before any record is stored.
    const body = JSON.stringify({ sequences, options: { chunk_size: 7 }, model: 'revcomp' });
    const key = { 'idempotency-key': 'big-json' };
    const upload = h.post('/v1/jobs', body, key);
    const during = await predictWhile(upload, n);
    const res = await upload;
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.data.total, n);
    assert.ok(
      during.whileStoring >= 3,
      `${during.whileStoring} predictions answered while its records were being stored (${during.before} before its answer)`,
    );
    t.diagnostic(
      `${during.before} predictions answered during the JSON submission, ${during.whileStoring} of them while its records were being stored`,
    );
    // The same content, keys in another order: the same request.
    const again = await h.post(
      '/v1/jobs',
      JSON.stringify({ model: 'revcomp', options: { chunk_size: 7 }, sequences }),
      key,
    );
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.data.id, res.body.data.id);
    assert.equal((await h.post(`/v1/jobs/${res.body.data.id}/cancel`)).status, 200);
  });

  it('a sequence that crashes its worker fails only its own record; the job goes on', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => ({
      id: `c${i}`,
      sequence: 'ACGT'.slice(0, 1 + (i % 4)),
      ...(i === 2 && { parameters: { action: 'crash' } }),
    }));
    const r = await h.post('/v1/jobs', { model: 'chaos-py', inputs, chunk_size: 6, workers: 1 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const final = await done(r.body.data.id, 60_000);
    assert.equal(final.status, 'succeeded');
    assert.equal(final.failed, 1);
    const recs = lines((await h.get(`/v1/jobs/${r.body.data.id}/results`)).body as string);
    assert.deepEqual(
      recs.map((x) => x.status),
      ['success', 'success', 'error', 'success', 'success', 'success'],
    );
    assert.equal(recs[2].error.code, 'PREDICTION_FAILED');
    assert.match(recs[2].error.message, /exit/);
  });
});

interface Key {
  id: string;
  name: string;
  auth: Record<string, string>;
}

function makeKey(h: Harness, name: string, scopes: ('predict' | 'admin')[]): Key {
  const k = h.gw.keys.create(name, scopes);
  return { id: k.record.id, name, auth: { authorization: `Bearer ${k.key}` } };
}

const fasta = (n: number, prefix = 'r') =>
  Array.from({ length: n }, (_, i) => `>${prefix}${i}\nACGT${'ACGT'.slice(0, i % 4)}\n`).join('');

describe('job API with API keys: jobs belong to the key that submitted them', () => {
  let h: Harness;
  let a: Key;
  let b: Key;
  let ops: Key;
  before(async () => {
    h = await startGateway(['revcomp', 'slow-node']);
    // Created before any request: auth is on from the first one.
    a = makeKey(h, 'lab-a', ['predict']);
    b = makeKey(h, 'lab-b', ['predict']);
    ops = makeKey(h, 'ops', ['admin']);
  });
  after(async () => h.close());

  const finished = (id: string, key: Key) =>
    waitFor(async () => {
      const r = await h.get(`/v1/jobs/${id}`, key.auth);
      return ['succeeded', 'failed', 'cancelled'].includes(r.body.data.status) ? r.body.data : null;
    }, 30_000);

  it('another key gets 404 for the job, its results and cancel; lists are per key; an admin sees and cancels all', async () => {
    const slow = await h.post(
      '/v1/jobs',
      {
        model: 'slow-node',
        sequences: Array.from({ length: 40 }, () => 'ACGT'),
        options: { delay_ms: 300 },
        workers: 1,
        chunk_size: 8,
      },
      a.auth,
    );
    assert.equal(slow.status, 202, JSON.stringify(slow.body));
    const pipe = await h.post(
      '/v1/jobs',
      {
        pipeline: {
          name: 'rc-echo',
          steps: [
            { name: 'rc', model: 'revcomp' },
            { name: 'echo', model: 'slow-node', sequence: 'rc.reverse_complement' },
          ],
        },
        sequences: ['AAGG'],
      },
      a.auth,
    );
    assert.equal(pipe.status, 202, JSON.stringify(pipe.body));
    const mine = await h.post('/v1/jobs?model=revcomp', fasta(3), { ...b.auth, 'content-type': 'text/x-fasta' });
    assert.equal(mine.status, 202, JSON.stringify(mine.body));
    const aSlow: string = slow.body.data.id;
    const aPipe: string = pipe.body.data.id;
    const bJob: string = mine.body.data.id;
    assert.equal(slow.body.data.owner, undefined, 'a predict key is not shown owners');

    // To B, A's jobs (a pipeline too) do not exist: the same answer as an id nobody used.
    const nobody = '00000000-0000-4000-8000-000000000000';
    for (const id of [aSlow, aPipe, nobody]) {
      for (const [method, path] of [
        ['GET', `/v1/jobs/${id}`],
        ['GET', `/v1/jobs/${id}/results`],
        ['GET', `/v1/jobs/${id}/results?format=csv`],
        ['POST', `/v1/jobs/${id}/cancel`],
      ] as const) {
        const r = await request<any>(h.url + path, method, method === 'POST' ? {} : undefined, b.auth);
        assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'NOT_FOUND');
        assert.equal(r.body.message, `no job ${id}`);
      }
    }
    assert.notEqual((await h.get(`/v1/jobs/${aSlow}`, a.auth)).body.data.status, 'cancelled', "B's cancel did nothing");

    const ids = async (key: Key, query = '') => {
      const r = await h.get(`/v1/jobs${query}`, key.auth);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return {
        ids: (r.body.data.jobs as any[]).map((j) => j.id).sort(),
        total: r.body.data.total,
        jobs: r.body.data.jobs as any[],
      };
    };
    assert.deepEqual((await ids(a)).ids, [aSlow, aPipe].sort());
    assert.deepEqual(await ids(b).then((x) => [x.ids, x.total]), [[bJob], 1]);
    assert.deepEqual((await ids(b, `?owner=${a.id}`)).total, 0, 'a filter cannot widen what a key sees');

    // The admin key lists every job with its owner, filters by owner, reads and cancels any.
    const all = await ids(ops);
    assert.deepEqual(all.ids, [aSlow, aPipe, bJob].sort());
    const owners = new Map(all.jobs.map((j) => [j.id, j.owner]));
    assert.deepEqual(owners.get(aSlow), { id: a.id, name: 'lab-a' });
    assert.deepEqual(owners.get(bJob), { id: b.id, name: 'lab-b' });
    assert.deepEqual((await ids(ops, `?owner=${a.id}`)).ids, [aSlow, aPipe].sort());
    const seen = await h.get(`/v1/jobs/${bJob}`, ops.auth);
    assert.equal(seen.body.data.owner.name, 'lab-b');
    await finished(bJob, b);
    assert.equal(
      lines(await (await fetch(`${h.url}/v1/jobs/${bJob}/results`, { headers: ops.auth })).text()).length,
      3,
    );
    const c = await h.post(`/v1/jobs/${aSlow}/cancel`, {}, ops.auth);
    assert.equal(c.status, 200);
    assert.equal(c.body.data.status, 'cancelled');
    assert.equal((await h.get(`/v1/jobs/${aSlow}`, a.auth)).body.data.error, 'cancelled by ops');
    // Reaching into another key's job is an admin action: audited, with the owner named.
    const foreign = h.gw.audit.query({ actor: 'ops', limit: 100 }).filter((e) => String(e.action).startsWith('jobs.'));
    assert.deepEqual(foreign.map((e) => [e.action, e.target, e.details]).sort(), [
      ['jobs.cancel', aSlow, 'job of lab-a'],
      ['jobs.read', bJob, 'job of lab-b'],
      ['jobs.results', bJob, 'job of lab-b'],
    ]);
    // The owner reads its pipeline's results.
    await finished(aPipe, a);
    const [rec] = lines(await (await fetch(`${h.url}/v1/jobs/${aPipe}/results`, { headers: a.auth })).text());
    assert.equal(rec.output.rc.reverse_complement, 'CCTT');
  });

  it('scopes Idempotency-Keys per key: the same key string gives each API key its own job, and tells neither of the other', async () => {
    const k = { 'idempotency-key': 'shared-key-1' };
    const body1 = { model: 'revcomp', sequences: ['ACGT'] };
    const body2 = { model: 'revcomp', sequences: ['GGGA', 'TT'] };
    const a1 = await h.post('/v1/jobs', body1, { ...a.auth, ...k });
    assert.equal(a1.status, 202);
    const b1 = await h.post('/v1/jobs', body2, { ...b.auth, ...k });
    assert.equal(b1.status, 202, 'not a conflict with A: ' + JSON.stringify(b1.body));
    assert.notEqual(b1.body.data.id, a1.body.data.id);
    const b2 = await h.post('/v1/jobs', body1, { ...b.auth, ...k });
    assert.equal(b2.status, 409);
    assert.equal(b2.body.error.code, 'IDEMPOTENCY_CONFLICT');
    assert.equal(b2.body.error.details.job_id, b1.body.data.id, "B's conflict names B's job");
    assert.ok(!JSON.stringify(b2.body).includes(a1.body.data.id), "nothing of A's job reaches B");
    const a2 = await h.post('/v1/jobs', body1, { ...a.auth, ...k });
    assert.equal(a2.status, 200);
    assert.equal(a2.body.data.id, a1.body.data.id);

    // Raw uploads too: the retry is recognised from the body it streams again.
    const k2 = { 'idempotency-key': 'shared-key-2', 'content-type': 'text/x-fasta' };
    const r1 = await h.post('/v1/jobs?model=revcomp', fasta(5), { ...a.auth, ...k2 });
    assert.equal(r1.status, 202);
    const r2 = await h.post('/v1/jobs?model=revcomp', fasta(5), { ...a.auth, ...k2 });
    assert.equal(r2.status, 200);
    assert.equal(r2.headers.get('idempotent-replayed'), 'true');
    assert.equal(r2.body.data.id, r1.body.data.id);
    assert.equal((await h.post('/v1/jobs?model=revcomp', fasta(6), { ...a.auth, ...k2 })).status, 409);
    const other = await h.post('/v1/jobs?model=revcomp', fasta(5), { ...b.auth, ...k2 });
    assert.equal(other.status, 202);
    assert.notEqual(other.body.data.id, r1.body.data.id);
  });
});

describe('job API limits: upload size and per-key quotas', () => {
  const MAX_UPLOAD = 64 * 1024;
  let h: Harness;
  let c: Key;
  let d: Key;
  before(async () => {
    h = await startGateway(['revcomp', 'slow-node'], {
      jobs: { max_upload_bytes: MAX_UPLOAD, max_queued_jobs_per_key: 2, max_queued_records_per_key: 300 },
    });
    c = makeKey(h, 'lab-c', ['predict']);
    d = makeKey(h, 'lab-d', ['predict']);
  });
  after(async () => h.close());

  const stored = () =>
    h.gw.store.db
      .prepare('SELECT (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM job_items) AS items')
      .get();
  const uploadsLeft = () => {
    try {
      return readdirSync(join(h.stateDir, 'uploads'));
    } catch {
      return [];
    }
  };

  it('answers an upload over jobs.max_upload_bytes with 413 PAYLOAD_TOO_LARGE and creates nothing', async () => {
    const before = stored();
    const big = fasta(8000);
    assert.ok(big.length > MAX_UPLOAD);
    const tooLarge = (r: { status: number; body: any }, what: string) => {
      assert.equal(r.status, 413, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'PAYLOAD_TOO_LARGE');
      assert.match(
        r.body.message,
        new RegExp(`over the gateway's limit of ${MAX_UPLOAD} bytes \\(jobs\\.max_upload_bytes\\)`),
      );
    };
    // With a Content-Length (refused before reading), streamed without one (refused part way), as JSON.
    tooLarge(
      await h.post('/v1/jobs?model=revcomp', big, { ...c.auth, 'content-type': 'text/x-fasta' }),
      'declared length',
    );
    const bytes = new TextEncoder().encode(big);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctl) {
        if (sent >= bytes.length) return ctl.close();
        ctl.enqueue(bytes.subarray(sent, sent + 4096));
        sent += 4096;
      },
    });
    const chunked = await fetch(`${h.url}/v1/jobs?model=revcomp`, {
      method: 'POST',
      headers: { ...c.auth, 'content-type': 'text/x-fasta' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    tooLarge({ status: chunked.status, body: await chunked.json() }, 'chunked');
    tooLarge(await h.post('/v1/jobs', { model: 'revcomp', format: 'fasta', data: big }, c.auth), 'JSON');
    assert.deepEqual(stored(), before, 'no job row, no record');
    assert.deepEqual(uploadsLeft(), [], 'no upload file left');
    // Within the limit, the same route takes it.
    const fits = await h.post('/v1/jobs?model=revcomp', fasta(100), { ...c.auth, 'content-type': 'text/x-fasta' });
    assert.equal(fits.status, 202, JSON.stringify(fits.body));
    assert.equal(fits.body.data.total, 100);
    // A syntax error part way through a streamed upload also leaves nothing.
    const mid = stored();
    const broken = await h.post('/v1/jobs?model=revcomp&format=jsonl', '{"sequence":"AC"}\n'.repeat(2500) + '{oops\n', {
      ...c.auth,
      'content-type': 'application/x-ndjson',
    });
    assert.equal(broken.status, 400);
    assert.match(broken.body.message, /body line 2501: not valid JSON/);
    assert.deepEqual(stored(), mid);
    await waitFor(
      async () => (await h.get(`/v1/jobs/${fits.body.data.id}`, c.auth)).body.data.status === 'succeeded',
      30_000,
    );
  });

  it('limits unfinished jobs and queued records per key: 429 QUOTA_EXCEEDED (413 for a job that could never fit)', async () => {
    const slowJob = (n: number, key: Key) =>
      h.post(
        '/v1/jobs',
        {
          model: 'slow-node',
          sequences: Array.from({ length: n }, () => 'ACGT'),
          options: { delay_ms: 400 },
          workers: 1,
          chunk_size: 8,
        },
        key.auth,
      );
    const first = await slowJob(200, c);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const before = stored();

    // 200 records waiting + 200 more > 300: refused, JSON or raw, and nothing is stored.
    const over = await slowJob(200, c);
    assert.equal(over.status, 429, JSON.stringify(over.body));
    assert.equal(over.body.error.code, 'QUOTA_EXCEEDED');
    assert.equal(over.body.error.details.quota, 'max_queued_records_per_key');
    assert.match(over.body.message, /jobs\.max_queued_records_per_key/);
    const overRaw = await h.post('/v1/jobs?model=revcomp', fasta(200), { ...c.auth, 'content-type': 'text/x-fasta' });
    assert.equal(overRaw.status, 429, JSON.stringify(overRaw.body));
    assert.equal(overRaw.body.error.code, 'QUOTA_EXCEEDED');
    // Alone over the records limit: waiting would not help.
    const never = await h.post('/v1/jobs?model=revcomp', fasta(301), { ...d.auth, 'content-type': 'text/x-fasta' });
    assert.equal(never.status, 413, JSON.stringify(never.body));
    assert.equal(never.body.error.details.quota, 'max_queued_records_per_key');
    assert.deepEqual(stored(), before);

    // A second job fits the records; a third is one unfinished job too many.
    const second = await slowJob(50, c);
    assert.equal(second.status, 202, JSON.stringify(second.body));
    await waitFor(
      async () => (await h.get(`/v1/jobs/${first.body.data.id}`, c.auth)).body.data.rate_per_s !== null,
      20_000,
    );
    const third = await h.post('/v1/jobs', { model: 'revcomp', sequences: ['AC'] }, c.auth);
    assert.equal(third.status, 429, JSON.stringify(third.body));
    assert.equal(third.body.error.code, 'QUOTA_EXCEEDED');
    assert.equal(third.body.error.details.quota, 'max_queued_jobs_per_key');
    assert.match(third.body.message, /already has 2 unfinished jobs.*jobs\.max_queued_jobs_per_key = 2/);
    const retry = Number(third.headers.get('retry-after'));
    assert.ok(
      Number.isInteger(retry) && retry >= 1,
      `Retry-After from the key's running jobs: ${third.headers.get('retry-after')}`,
    );
    // Refused before the upload is read.
    const thirdRaw = await h.post('/v1/jobs?model=revcomp', fasta(1), { ...c.auth, 'content-type': 'text/x-fasta' });
    assert.equal(thirdRaw.status, 429);
    // Quotas are per key: another key still submits.
    const other = await h.post('/v1/jobs', { model: 'revcomp', sequences: ['AC'] }, d.auth);
    assert.equal(other.status, 202, JSON.stringify(other.body));
    // A cancelled job frees its place.
    assert.equal((await h.post(`/v1/jobs/${first.body.data.id}/cancel`, {}, c.auth)).status, 200);
    const again = await h.post('/v1/jobs', { model: 'revcomp', sequences: ['AC'] }, c.auth);
    assert.equal(again.status, 202, JSON.stringify(again.body));
    assert.equal((await h.post(`/v1/jobs/${second.body.data.id}/cancel`, {}, c.auth)).status, 200);
  });
});
