// Biological validity of the built-in sequence models, through a real gateway: how often the
// classifiers call generated DNA (random at 40/50/60 % GC, dinucleotide shuffles of promoters) a
// promoter or a splice junction; uninformative input refused with LOW_INFORMATION_SEQUENCE on
// every surface (native, batch, OpenAI, Open Inference, MCP, agent, jobs); codons with ambiguity
// letters never read as real codons; RNA accepted where the cards say so. The sequences are
// generated here with their own seeded PRNG, so the training scripts never saw them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { mulberry32 } from '../src/util/prng.js';
import { startGateway, waitFor, type Harness } from './helpers.js';

interface Vectors {
  classes: string[];
  cases: { sequence: string; probabilities: number[] }[];
  shuffle_sources?: string[];
}
const vectors = (model: string): Vectors =>
  JSON.parse(readFileSync(join(BUILTIN_MODELS_DIR, model, 'test_vectors.json'), 'utf8')) as Vectors;

// --- generated sequences ---------------------------------------------------------------------
/** i.i.d. bases, P(G) = P(C) = gc / 2. */
function randomDna(rand: () => number, length: number, gc: number): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    const u = rand();
    s += u < gc / 2 ? 'G' : u < gc ? 'C' : u < gc + (1 - gc) / 2 ? 'A' : 'T';
  }
  return s;
}

const dinucleotides = (s: string): Map<string, number> => {
  const m = new Map<string, number>();
  for (let i = 0; i + 1 < s.length; i++) m.set(s.slice(i, i + 2), (m.get(s.slice(i, i + 2)) ?? 0) + 1);
  return m;
};

/**
 * A random sequence with exactly the dinucleotide counts of `seq` (Altschul & Erickson 1985): a
 * random Eulerian walk, written independently of training/common.py.
 */
function dinucleotideShuffle(seq: string, rand: () => number): string {
  const letters = [...new Set(seq)].sort();
  const edges = new Map(letters.map((a) => [a, [] as string[]]));
  for (let i = 0; i + 1 < seq.length; i++) edges.get(seq[i]!)!.push(seq[i + 1]!);
  const last = seq[seq.length - 1]!;
  const pickIndex = (n: number): number => Math.floor(rand() * n);
  let lastEdge: Map<string, number>;
  for (;;) {
    lastEdge = new Map();
    for (const a of letters)
      if (a !== last && edges.get(a)!.length > 0) lastEdge.set(a, pickIndex(edges.get(a)!.length));
    // every letter's chosen last edge must lead to the final letter (a tree, no cycle)
    const reaches = [...lastEdge.keys()].every((a) => {
      const seen = new Set<string>();
      let v = a;
      while (v !== last) {
        if (seen.has(v) || !lastEdge.has(v)) return false;
        seen.add(v);
        v = edges.get(v)![lastEdge.get(v)!]!;
      }
      return true;
    });
    if (reaches) break;
  }
  const order = new Map<string, string[]>();
  for (const a of letters) {
    const list = [...edges.get(a)!];
    const keep = lastEdge.has(a) ? list.splice(lastEdge.get(a)!, 1)[0]! : undefined;
    for (let i = list.length - 1; i > 0; i--) {
      const j = pickIndex(i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
    if (keep !== undefined) list.push(keep);
    order.set(a, list);
  }
  let out = seq[0]!;
  let v = seq[0]!;
  const used = new Map(letters.map((a) => [a, 0]));
  for (let k = 1; k < seq.length; k++) {
    const next = order.get(v)![used.get(v)!]!;
    used.set(v, used.get(v)! + 1);
    out += next;
    v = next;
  }
  return out;
}

describe('biological validity of the built-in classifiers', () => {
  let h: Harness;
  const promoter = vectors('promoter');
  const splice = vectors('splice');
  const N57 = 'N'.repeat(57);
  const good57 = promoter.cases[0]!.sequence;

  before(async () => {
    h = await startGateway(['promoter', 'splice', 'codon']);
  });
  after(async () => h?.close());

  /** P(promoter) of every sequence, 100 per batch request. */
  const pPromoter = async (seqs: string[]): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < seqs.length; i += 100) {
      const r = await h.post('/models/promoter/predict/batch', { sequences: seqs.slice(i, i + 100) });
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
      out.push(...r.body.data.predictions.map((p: any) => p.prediction as number));
    }
    return out;
  };
  const rate = (ps: number[]): number => ps.filter((p) => p >= 0.5).length / ps.length;

  it('promoter: random 57-mers and dinucleotide shuffles of promoters are rarely called promoters', async (t) => {
    const rand = mulberry32(20250121);
    const rates: Record<string, number> = {};
    for (const gc of [0.4, 0.5, 0.6]) {
      rates[`random GC ${gc * 100}%`] = rate(
        await pPromoter(Array.from({ length: 500 }, () => randomDna(rand, 57, gc))),
      );
    }
    const sources = promoter.shuffle_sources!;
    assert.equal(sources.length, 53);
    const shuffles = sources.flatMap((s) => Array.from({ length: 6 }, () => dinucleotideShuffle(s, rand)));
    shuffles.forEach((s, i) =>
      assert.deepEqual(
        dinucleotides(s),
        dinucleotides(sources[Math.floor(i / 6)]!),
        'the shuffle keeps the dinucleotides',
      ),
    );
    rates['dinucleotide-shuffled promoters'] = rate(await pPromoter(shuffles));
    const homopolymers = await pPromoter(['A', 'C', 'G', 'T'].map((b) => b.repeat(57)));
    t.diagnostic(
      `called "promoter": ${Object.entries(rates)
        .map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`)
        .join(', ')}; ` + `poly-A/C/G/T P = ${homopolymers.map((p) => p.toFixed(3)).join(', ')}`,
    );
    // The card's aim (at most 10 % at 50 % GC), with the measured rates well inside the bounds.
    assert.ok(rates['random GC 50%']! <= 0.1, `random 50 % GC: ${rates['random GC 50%']}`);
    assert.ok(rates['random GC 60%']! <= 0.1, `random 60 % GC: ${rates['random GC 60%']}`);
    assert.ok(rates['random GC 40%']! <= 0.15, `random 40 % GC: ${rates['random GC 40%']}`);
    assert.ok(
      rates['dinucleotide-shuffled promoters']! <= 0.15,
      `shuffles: ${rates['dinucleotide-shuffled promoters']}`,
    );
    for (const p of homopolymers) assert.ok(p < 0.5, `a homopolymer is not a promoter (P = ${p})`);
    // ...and not by calling everything a non-promoter: the promoters themselves still are promoters.
    assert.ok(rate(await pPromoter(sources)) >= 0.85);
  });

  it('splice: random 60-mers are rarely called a junction', async (t) => {
    const rand = mulberry32(20250122);
    const seqs = Array.from({ length: 300 }, () => randomDna(rand, 60, 0.5));
    const calls: string[] = [];
    for (let i = 0; i < seqs.length; i += 100) {
      const r = await h.post('/models/splice/predict/batch', { sequences: seqs.slice(i, i + 100) });
      assert.equal(r.status, 200);
      calls.push(...r.body.data.predictions.map((p: any) => p.prediction as string));
    }
    const junction = calls.filter((c) => c !== 'n').length / calls.length;
    t.diagnostic(`random 50 % GC 60-mers called ei or ie: ${(100 * junction).toFixed(1)}%`);
    assert.ok(junction <= 0.05, `called a junction: ${junction}`);
  });

  it('refuses uninformative input on the native routes: all N, and past the task limit of 10 %', async () => {
    const one = await h.post('/models/promoter/predict', { sequence: N57 });
    assert.equal(one.status, 400);
    assert.equal(one.body.success, false);
    assert.equal(one.body.error.code, 'LOW_INFORMATION_SEQUENCE');
    assert.match(one.body.message, /100% ambiguous letters \(57 of 57.*at most 10%/);
    assert.deepEqual(one.body.error.details, {
      ambiguous: 57,
      length: 57,
      ambiguous_fraction: 1,
      max_ambiguous_fraction: 0.1,
      ambiguous_letters: 'NRYSWKMBDHV',
    });
    const at = (n: number): string => 'N'.repeat(n) + good57.slice(n);
    assert.equal(
      (await h.post('/models/promoter/predict', { sequence: at(5) })).status,
      200,
      '5 of 57 (8.8 %) is within the limit',
    );
    assert.equal(
      (await h.post('/models/promoter/predict', { sequence: at(6) })).body.error.code,
      'LOW_INFORMATION_SEQUENCE',
      '6 of 57 (10.5 %) is not',
    );
    const batch = await h.post('/models/promoter/predict/batch', { sequences: [good57, N57] });
    assert.equal(batch.status, 400);
    assert.equal(batch.body.error.code, 'LOW_INFORMATION_SEQUENCE');
    assert.equal(batch.body.error.details.index, 1);
    const sp = await h.post('/models/splice/predict', { sequence: 'RYN'.repeat(20) });
    assert.equal(sp.body.error.code, 'LOW_INFORMATION_SEQUENCE', 'R and Y are ambiguous too');
  });

  it('refuses uninformative input on the OpenAI, Open Inference, agent and job surfaces', async () => {
    const chat = await h.post('/v1/chat/completions', {
      model: 'promoter',
      messages: [{ role: 'user', content: N57 }],
    });
    assert.equal(chat.status, 400);
    assert.equal(chat.body.error.code, 'low_information_sequence');
    assert.match(chat.body.error.message, /at most 10%/);
    const oip = await h.post('/v2/models/promoter/infer', {
      inputs: [{ name: 'sequences', shape: [2], datatype: 'BYTES', data: [good57, N57] }],
    });
    assert.equal(oip.status, 400);
    assert.match(oip.body.error, /sequences\[1\].*100% ambiguous/);
    const agent = await h.post('/agent/analyze', {
      sequences: [N57],
      task_type: 'promoter_prediction',
      model_name: 'promoter',
    });
    assert.equal(agent.status, 400);
    assert.equal(agent.body.error.code, 'LOW_INFORMATION_SEQUENCE');
    const job = await h.post('/v1/jobs', { model: 'promoter', sequences: [good57, N57] });
    assert.equal(job.status, 202, JSON.stringify(job.body));
    await waitFor(
      async () => ((await h.get(`/v1/jobs/${job.body.data.id}`)).body.data.status === 'succeeded' ? true : null),
      30_000,
    );
    const recs = (await (await fetch(`${h.url}/v1/jobs/${job.body.data.id}/results`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(recs[0].status, 'success');
    assert.equal(recs[1].status, 'error');
    assert.equal(recs[1].error.code, 'LOW_INFORMATION_SEQUENCE');
  });

  it('refuses uninformative input on MCP (per-task tool and analyze_sequences)', async () => {
    const client = new Client({ name: 'isomodel-bio-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`)));
    try {
      for (const [name, args] of [
        ['promoter__promoter_prediction', { sequences: [N57] }],
        ['analyze_sequences', { sequences: [N57], task_type: 'promoter_prediction' }],
      ] as const) {
        const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
        assert.equal(r.isError, true, JSON.stringify(r.content).slice(0, 300));
        const body = JSON.parse((r.content[0] as { text: string }).text);
        assert.equal(body.error.code, 'LOW_INFORMATION_SEQUENCE', JSON.stringify(body));
      }
    } finally {
      await client.close();
    }
  });

  it('codon: NNN codons are skipped and counted, never read as AAA; an all-N sequence is refused', async () => {
    const cai = await h.post('/models/codon/predict', {
      task_type: 'codon_adaptation_index',
      sequence: 'ATGCTANNNTAA',
    });
    assert.equal(cai.status, 200);
    assert.equal(cai.body.data.skipped_by_reason.ambiguous, 1);
    assert.equal(cai.body.data.codons_used, 3);
    const usage = await h.post('/models/codon/predict', { task_type: 'codon_usage', sequence: 'ATGNNNNNNAAGTAA' });
    assert.equal(usage.body.data.codons.AAA.count, 0);
    assert.equal(usage.body.data.amino_acids.K, 1);
    assert.equal(usage.body.data.codons_skipped, 2);
    const allN = await h.post('/models/codon/predict', {
      task_type: 'codon_adaptation_index',
      sequence: 'N'.repeat(300),
    });
    assert.equal(allN.status, 400);
    assert.equal(allN.body.error.code, 'LOW_INFORMATION_SEQUENCE');
  });

  it('RNA: splice reads U as T (as its card says); promoter is DNA only and refuses U', async () => {
    const c = splice.cases[0]!;
    const rna = await h.post('/models/splice/predict', { sequence: c.sequence.replaceAll('T', 'U') });
    assert.equal(rna.status, 200, JSON.stringify(rna.body));
    const dna = await h.post('/models/splice/predict', { sequence: c.sequence });
    assert.deepEqual(rna.body.data.probabilities, dna.body.data.probabilities);
    const p = await h.post('/models/promoter/predict', { sequence: good57.replaceAll('T', 'U') });
    assert.equal(p.status, 400);
    assert.equal(p.body.error.code, 'INVALID_SEQUENCE');
  });
});
