// The job API through a real gateway on loopback: submission (inline, exchange objects, raw
// uploads), progress, results streamed in input order, CSV, cancel, list, idempotency, pipelines,
// and a sequence that crashes its worker failing only its own record.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, waitFor, type Harness } from './helpers.js';

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A', N: 'N' };
const rc = (s: string): string => s.toUpperCase().split('').reverse().map((c) => COMP[c]).join('');

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
      { task: 'gc_content', input: { sequence: 'GGGGAAAA', parameters: { window: 4 } }, metadata: { request_id: 'task_001' } },
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
    const fasta = await h.post('/v1/jobs?model=revcomp', '>one first\nACGG\nTT\n>two\nNNAC\n', { 'content-type': 'text/x-fasta' });
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

    const csv = await h.post('/v1/jobs', { model: 'gc-scanner', task: 'gc_content', format: 'csv', data: 'id,sequence,parameters.window\nr1,GGAA,2\nr2,ATAT,\n' });
    assert.equal(csv.status, 202, JSON.stringify(csv.body));
    await done(csv.body.data.id);
    const c = lines((await h.get(`/v1/jobs/${csv.body.data.id}/results`)).body as string);
    assert.deepEqual(c[0].output.windows, [1, 0]);
    assert.equal(c[1].output.windows, undefined);

    const jsonl = await h.post('/v1/jobs?model=revcomp&format=jsonl', '{"id":"a","sequence":"AAC"}\n{"id":"b","sequence":"GGT"}\n', { 'content-type': 'text/plain' });
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
      [{ model: 'gc-scanner', sequences: ['AC'] }, 400, /task_type is required/],
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
    const raw = await h.post('/v1/jobs', '>a\nAC\n', { 'content-type': 'text/x-fasta' });
    assert.equal(raw.status, 400);
    assert.match(raw.body.message, /names the model and task in the query string/);
    assert.equal((await h.get('/v1/jobs/nope')).status, 404);
    assert.equal((await h.post('/v1/jobs/nope/cancel')).status, 404);
  });

  it('is idempotent by Idempotency-Key: same body, same job; another body, 409', async () => {
    const key = { 'idempotency-key': `k-${Date.now()}` };
    const a = await h.post('/v1/jobs', { model: 'revcomp', sequences: ['ACGT', 'GG'], options: { chunk_size: 5 } }, key);
    assert.equal(a.status, 202);
    // Same content, keys in another order: the same request.
    const b = await h.post('/v1/jobs', { options: { chunk_size: 5 }, sequences: ['ACGT', 'GG'], model: 'revcomp' }, key);
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
    assert.equal((await h.post('/v1/jobs', { model: 'revcomp', sequences: ['A'] }, { 'idempotency-key': 'bad key' })).status, 400);
  });

  it('streams results while the job runs, in input order', async () => {
    // slow-node answers each batch of 8 after delay_ms: 10 batches, one at a time.
    const seqs = Array.from({ length: 80 }, (_, i) => 'ACGT'.repeat(1 + (i % 5)));
    const r = await h.post('/v1/jobs', { model: 'slow-node', sequences: seqs, options: { delay_ms: 150 }, workers: 1, chunk_size: 8 });
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
    assert.match(rows[0]!, /^index,request_id,task,status,service,version,processing_time_ms,error_code,error_message,length/);
  });

  it('cancels a running job; CSV waits for the end; the list filters by status', async () => {
    const seqs = Array.from({ length: 200 }, () => 'ACGT');
    const r = await h.post('/v1/jobs', { model: 'slow-node', sequences: seqs, options: { delay_ms: 100 }, workers: 1, chunk_size: 8 });
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

  it('a sequence that crashes its worker fails only its own record; the job goes on', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => ({ id: `c${i}`, sequence: 'ACGT'.slice(0, 1 + (i % 4)), ...(i === 2 && { parameters: { action: 'crash' } }) }));
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
