// The OpenAI-compatible endpoints, driven by the official `openai` npm client against a real
// gateway on loopback, and compared with the native API's answers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI, { APIError, BadRequestError, NotFoundError } from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { startGateway, type Harness } from './helpers.js';

function reverseComplement(s: string): string {
  const c: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
  return [...s]
    .reverse()
    .map((b) => c[b]!)
    .join('');
}

const SEQS = ['ATGCGTACGTAGCTAGCTAGCTAGC', 'GGGCCCAAATTTGGGCCCAAATTT', 'acgtacgtacgtnnnnacgtacgtacgt'];
const LONG = Array.from({ length: 300 }, (_, i) => 'ACGT'[(i * 5 + (i >> 2)) % 4]).join('');

/** The APIError a client call rejects with. */
async function apiError(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof APIError, `expected an APIError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the call to fail');
}

describe('OpenAI-compatible API', () => {
  let h: Harness;
  let client: OpenAI;
  before(async () => {
    h = await startGateway(['dna-embed', 'revcomp', 'gc-scanner', 'chaos-py']);
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'not-checked', maxRetries: 0 });
  });
  after(async () => h.close());

  async function nativeEmbedding(sequence: string, options: Record<string, unknown> = {}): Promise<number[]> {
    const r = await h.post('/models/dna-embed/predict', { sequence, options });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data.embedding;
  }

  it('embeds one input exactly as the native API does (encoding_format float)', async () => {
    const res = await client.embeddings.create({ model: 'dna-embed', input: SEQS[0]!, encoding_format: 'float' });
    assert.equal(res.object, 'list');
    assert.equal(res.model, 'dna-embed');
    assert.equal(res.data.length, 1);
    assert.equal(res.data[0]!.object, 'embedding');
    assert.equal(res.data[0]!.index, 0);
    const native = await nativeEmbedding(SEQS[0]!);
    assert.equal(native.length, 256);
    assert.deepEqual(res.data[0]!.embedding, native);
    // Usage counts residues as tokens.
    assert.deepEqual(res.usage, { prompt_tokens: SEQS[0]!.length, total_tokens: SEQS[0]!.length });
  });

  it('embeds several inputs in order; the client default (base64) decodes to the same float32 values', async () => {
    const natives = await Promise.all(SEQS.map((s) => nativeEmbedding(s)));
    const floats = await client.embeddings.create({ model: 'dna-embed', input: SEQS, encoding_format: 'float' });
    assert.deepEqual(
      floats.data.map((d) => d.index),
      [0, 1, 2],
    );
    assert.deepEqual(
      floats.data.map((d) => d.embedding),
      natives,
    );
    const residues = SEQS.reduce((n, s) => n + s.length, 0);
    assert.equal(floats.usage.prompt_tokens, residues);
    // Without encoding_format the client asks for base64 (little-endian float32) and decodes it.
    const b64 = await client.embeddings.create({ model: 'dna-embed', input: SEQS });
    assert.deepEqual(
      b64.data.map((d) => d.embedding),
      natives.map((v) => v.map((x) => Math.fround(x))),
    );
    // The wire format really is base64.
    const raw = await h.post('/v1/embeddings', { model: 'dna-embed', input: SEQS[1], encoding_format: 'base64' });
    assert.equal(raw.status, 200);
    assert.equal(typeof raw.body.data[0].embedding, 'string');
    const buf = Buffer.from(raw.body.data[0].embedding, 'base64');
    assert.equal(buf.length, 256 * 4);
    assert.equal(buf.readFloatLE(4), Math.fround(natives[1]![1]!));
  });

  it('honours dimensions (the embedding_dimension option)', async () => {
    const res = await client.embeddings.create({
      model: 'dna-embed',
      input: [SEQS[0]!, SEQS[1]!],
      dimensions: 64,
      encoding_format: 'float',
    });
    assert.equal(res.data[0]!.embedding.length, 64);
    assert.deepEqual(res.data[0]!.embedding, await nativeEmbedding(SEQS[0]!, { embedding_dimension: 64 }));
    assert.deepEqual(res.data[1]!.embedding, await nativeEmbedding(SEQS[1]!, { embedding_dimension: 64 }));
    const bad = await apiError(client.embeddings.create({ model: 'dna-embed', input: SEQS[0]!, dimensions: 4 }));
    assert.equal(bad.status, 400);
    assert.match(bad.message, /embedding_dimension/);
  });

  it('embedding errors come back as the client’s APIError with the right status', async () => {
    const unknown = await apiError(client.embeddings.create({ model: 'text-embedding-3-small', input: 'ACGT' }));
    assert.ok(unknown instanceof NotFoundError);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.code, 'model_not_found');
    assert.equal(unknown.type, 'invalid_request_error');
    assert.equal(unknown.param, 'model');

    const notEmbedding = await apiError(client.embeddings.create({ model: 'revcomp', input: 'ACGT' }));
    assert.ok(notEmbedding instanceof BadRequestError);
    assert.equal(notEmbedding.status, 400);
    assert.match(notEmbedding.message, /no task "embedding"/);

    const badSeq = await apiError(client.embeddings.create({ model: 'dna-embed', input: ['ACGT', 'ACXGT'] }));
    assert.equal(badSeq.status, 400);
    assert.equal(badSeq.code, 'invalid_sequence');
    assert.equal(badSeq.param, 'input');
    assert.match(badSeq.message, /input\[1\]/);

    const tokens = await h.post('/v1/embeddings', { model: 'dna-embed', input: [[1, 2, 3]] });
    assert.equal(tokens.status, 400);
    assert.equal(tokens.body.error.type, 'invalid_request_error');

    // Body-parser errors use the OpenAI shape on these routes too.
    const malformed = await h.post('/v1/embeddings', '{not json');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 'invalid_request');
    assert.equal(malformed.body.success, undefined);
  });

  it('streams chat completions for revcomp: the deltas concatenate to the reverse complement', async () => {
    const params = {
      model: 'revcomp',
      messages: [
        { role: 'system', content: 'ignored' },
        { role: 'user', content: `  ${LONG.toLowerCase()}\n` },
      ],
      stream: true,
      options: { chunk_size: 25 },
    };
    const stream = await client.chat.completions.create(params as ChatCompletionCreateParamsStreaming);
    let text = '';
    let contentChunks = 0;
    const finish: (string | null)[] = [];
    const ids = new Set<string>();
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, 'revcomp');
      ids.add(chunk.id);
      const choice = chunk.choices[0]!;
      if (choice.delta.content) contentChunks++;
      text += choice.delta.content ?? '';
      finish.push(choice.finish_reason);
    }
    assert.equal(text, reverseComplement(LONG));
    assert.equal(contentChunks, Math.ceil(LONG.length / 25));
    assert.equal(ids.size, 1);
    assert.equal(finish.at(-1), 'stop');
    assert.ok(finish.slice(0, -1).every((f) => f === null));
  });

  it('the raw chat stream is OpenAI SSE ending with data: [DONE]', async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'revcomp:reverse_complement',
        messages: [{ role: 'user', content: 'ACGTTG' }],
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const text = await res.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'), text.slice(-200));
    const datas = text
      .split('\n\n')
      .filter(Boolean)
      .map((b) => b.replace(/^data: /, ''));
    assert.equal(datas.at(-1), '[DONE]');
    const chunks = datas.slice(0, -1).map((d) => JSON.parse(d));
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, { prompt_tokens: 6, completion_tokens: 6, total_tokens: 12 });
  });

  it('answers non-streaming chat completions with the final output', async () => {
    const res = await client.chat.completions.create({
      model: 'revcomp',
      messages: [{ role: 'user', content: [{ type: 'text', text: ' ACGTTG ' }] }],
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    assert.equal(res.choices[0]!.message.role, 'assistant');
    const out = JSON.parse(res.choices[0]!.message.content!);
    assert.equal(out.reverse_complement, 'CAACGT');
    assert.equal(out.length, 6);
    assert.equal(res.usage!.prompt_tokens, 6);

    // A model with several tasks needs name:task; a model that does not stream still streams one delta.
    const gc = await client.chat.completions.create({
      model: 'gc-scanner:gc_content',
      messages: [{ role: 'user', content: 'GGCCAATT' }],
    });
    assert.equal(JSON.parse(gc.choices[0]!.message.content!).gc_content, 0.5);
    const parts: string[] = [];
    for await (const c of await client.chat.completions.create({
      model: 'gc-scanner:gc_content',
      messages: [{ role: 'user', content: 'GGCCAATT' }],
      stream: true,
    })) {
      if (c.choices[0]!.delta.content) parts.push(c.choices[0]!.delta.content);
    }
    assert.equal(parts.length, 1);
    assert.equal(JSON.parse(parts[0]!).gc_content, 0.5);
  });

  it('chat errors come back as APIError with the right status, before or during the stream', async () => {
    const unknown = await apiError(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'ACGT' }], stream: true }),
    );
    assert.ok(unknown instanceof NotFoundError);
    assert.equal(unknown.code, 'model_not_found');

    const noTask = await apiError(
      client.chat.completions.create({ model: 'gc-scanner:folding', messages: [{ role: 'user', content: 'ACGT' }] }),
    );
    assert.equal(noTask.status, 400);
    assert.match(noTask.message, /no task "folding"/);

    const badSeq = await apiError(
      client.chat.completions.create({
        model: 'revcomp',
        messages: [{ role: 'user', content: 'hello there' }],
        stream: true,
      }),
    );
    assert.equal(badSeq.status, 400);
    assert.equal(badSeq.code, 'invalid_sequence');

    const noUser = await apiError(
      client.chat.completions.create({ model: 'revcomp', messages: [{ role: 'system', content: 'ACGT' }] }),
    );
    assert.equal(noUser.status, 400);
    assert.equal(noUser.param, 'messages');

    // chaos-py streams JSON chunks ({"step":k}); 100 steps of 50 ms outlast its 2 s deadline,
    // so the error arrives in-band after some deltas and the client's iterator throws it.
    const params = {
      model: 'chaos-py',
      messages: [{ role: 'user', content: 'ACGT' }],
      stream: true,
      options: { steps: 100, delay: 0.05 },
    };
    const deltas: string[] = [];
    const midStream = await apiError(
      (async () => {
        for await (const c of await client.chat.completions.create(params as ChatCompletionCreateParamsStreaming)) {
          if (c.choices[0]?.delta.content) deltas.push(c.choices[0].delta.content);
        }
      })(),
    );
    assert.ok(deltas.length >= 1 && deltas.length < 100, `${deltas.length} deltas`);
    assert.deepEqual(JSON.parse(deltas[0]!), { step: 0 });
    assert.equal(midStream.code, 'prediction_timeout');
  });

  it('leaves GET /v1/models as the native model list', async () => {
    const r = await h.get('/v1/models');
    assert.equal(r.status, 200);
    assert.equal(r.body.success, true);
  });
});
