// LucaOne (LucaGPLM) exported to ONNX (models/lucaone/tools/export_onnx.py): everything around the
// network in JavaScript, mirroring models/lucaone/model.py and lucaone_gplm.py (sequence cleaning and
// type detection, LucaOne's alphabet, truncation, padding, pooling, the LucaOneTasks head outputs).
// The export lives outside the package, in LUCAONE_ONNX_PATH; see MODEL_CARD.md.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelError } from 'isomodel/worker';

const DEFAULT_PATH = '/data/models/LucaOne-onnx';
const FILES = ['model.onnx', 'isomodel_onnx.json'];
const FORMAT = 'isomodel-lucaone-onnx';
const HEAD_TASKS = ['classification', 'property_prediction'];
const TASKS = ['embedding', ...HEAD_TASKS];
const SEQ_TYPE_ALIASES = {
  gene: 'gene',
  dna: 'gene',
  rna: 'gene',
  nucleotide: 'gene',
  nucleic_acid: 'gene',
  prot: 'prot',
  protein: 'prot',
};
const POOLINGS = ['cls', 'mean'];
const TRUNC_TYPES = ['right', 'left'];
// gene_seq_replace: A->1, T/U->2, C->3, G->4, anything else->5; token types: 0 nucleotides, 1 proteins.
const GENE_REPLACE = { A: '1', T: '2', U: '2', C: '3', G: '4' };
const TOKEN_TYPE = { gene: 0, prot: 1 };
const NUCLEOTIDE_IUPAC = new Set('ACGTUNRYSWKMBDHV');
const NUCLEOTIDE_STRICT = new Set('ACGTUN');

let m = null; // what setup learnt: folder, alphabet, limits, heads
const plans = new WeakMap(); // batch -> its prepared rows, from preprocess to postprocess

const fail = (message) => new ModelError('MODEL_NOT_LOADED', message);

/** utils.clean_seq_luca: upper-case, keep A-Z only. */
const cleanSeq = (seq) =>
  Array.from(seq.toUpperCase())
    .filter((ch) => ch >= 'A' && ch <= 'Z')
    .join('');

/** 'gene' when every letter is a nucleotide code and >= 80% are A/C/G/T/U/N (seq_type_is_match_seq), else 'prot'. */
function detectSeqType(seq) {
  if (!seq || Array.from(seq).some((ch) => !NUCLEOTIDE_IUPAC.has(ch))) return 'prot';
  const strict = Array.from(seq).filter((ch) => NUCLEOTIDE_STRICT.has(ch)).length;
  return strict >= 0.8 * seq.length ? 'gene' : 'prot';
}

/** The export folder, checked and read; the host opens the model.onnx this returns. */
export function modelPath(ctx) {
  const dir = resolve(ctx.modelDir, ctx.env.LUCAONE_ONNX_PATH || DEFAULT_PATH);
  const missing = FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    const where = existsSync(dir) ? `missing: ${missing.join(', ')}` : 'the folder does not exist';
    throw fail(
      `LucaOne ONNX export not found: put model.onnx and isomodel_onnx.json (written by models/lucaone/tools/export_onnx.py ` +
        `from the LucaOne weights) in ${dir} (set LUCAONE_ONNX_PATH); ${where}`,
    );
  }
  let info;
  try {
    info = JSON.parse(readFileSync(join(dir, 'isomodel_onnx.json'), 'utf8'));
  } catch (e) {
    throw fail(`cannot read ${join(dir, 'isomodel_onnx.json')}: ${e.message}`);
  }
  if (info.format !== FORMAT)
    throw fail(
      `${join(dir, 'isomodel_onnx.json')} is not a LucaOne export (format ${JSON.stringify(info.format)}, expected ${FORMAT})`,
    );
  const tokens = Array.isArray(info.tokens) ? info.tokens : [];
  const tokToIdx = new Map(tokens.map((t, i) => [t, i]));
  for (const t of ['[PAD]', '[CLS]', '[SEP]'])
    if (!tokToIdx.has(t)) throw fail(`isomodel_onnx.json: the alphabet has no ${t}`);
  m = {
    dir,
    info,
    alphabet: info.alphabet,
    tokToIdx,
    pad: tokToIdx.get('[PAD]'),
    cls: tokToIdx.get('[CLS]'),
    sep: tokToIdx.get('[SEP]'),
    hidden: Number(info.hidden_size),
    maxResidues: Number(info.max_residues),
    heads: info.heads ?? {},
  };
  return join(dir, 'model.onnx');
}

export function setup(_ctx, io) {
  for (const name of ['input_ids', 'token_type_ids'])
    if (!io.inputNames.includes(name)) throw fail(`${m.dir}/model.onnx has no input ${name}`);
  for (const name of ['last_hidden_state', ...Object.keys(m.heads).map((t) => `${t}_logits`)]) {
    if (!io.outputNames.includes(name)) throw fail(`${m.dir}/model.onnx has no output ${name}`);
  }
  console.error(
    `lucaone-onnx: loaded ${m.dir}/model.onnx (hidden ${m.hidden}, ${m.info.num_hidden_layers} layers, alphabet ${m.alphabet}, ` +
      `heads: ${Object.keys(m.heads).join(', ') || 'none'})`,
  );
}

class ItemError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** model.py's _prepare: options, cleaning, sequence kind, tokens, truncation. */
function prepare(item, task) {
  const options = item.options ?? {};
  if (typeof options !== 'object' || Array.isArray(options))
    throw new ItemError('INVALID_REQUEST', 'options must be an object');
  const dim = options.embedding_dimension;
  if (dim != null && (typeof dim !== 'number' || dim !== m.hidden)) {
    throw new ItemError(
      'INVALID_REQUEST',
      `embedding_dimension must be ${m.hidden}: the loaded LucaOne checkpoint's embeddings are ${m.hidden}-dimensional ` +
        '(its hidden size); other sizes would need a projection LucaOne does not define',
    );
  }
  const pooling = String('pooling' in options ? options.pooling : 'cls').toLowerCase();
  if (!POOLINGS.includes(pooling))
    throw new ItemError('INVALID_REQUEST', `pooling must be one of ${POOLINGS.join(', ')}`);
  if (HEAD_TASKS.includes(task) && pooling !== 'cls') {
    throw new ItemError(
      'INVALID_REQUEST',
      `task ${task} feeds the [CLS] vector to its LucaOneTasks head; pooling '${pooling}' does not apply`,
    );
  }
  const trunc = String('trunc_type' in options ? options.trunc_type : 'right').toLowerCase();
  if (!TRUNC_TYPES.includes(trunc))
    throw new ItemError('INVALID_REQUEST', 'trunc_type must be right (keep the start) or left (keep the end)');
  const seq = cleanSeq(String(item.sequence ?? ''));
  if (!seq) throw new ItemError('INVALID_SEQUENCE', 'the sequence has no letters');
  let seqType;
  if (options.seq_type == null) seqType = detectSeqType(seq);
  else {
    seqType = SEQ_TYPE_ALIASES[String(options.seq_type).toLowerCase()];
    if (!seqType) throw new ItemError('INVALID_REQUEST', 'seq_type must be gene (DNA/RNA) or prot (protein)');
    const bad = [...new Set(Array.from(seq).filter((ch) => !NUCLEOTIDE_IUPAC.has(ch)))].sort();
    if (seqType === 'gene' && bad.length)
      throw new ItemError('INVALID_SEQUENCE', `seq_type gene, but ${bad.join('')} are not nucleotide codes`);
  }
  const text = seqType === 'gene' ? Array.from(seq, (ch) => GENE_REPLACE[ch] ?? '5') : Array.from(seq);
  let ids = text.map((ch) => {
    const id = m.tokToIdx.get(ch);
    if (id === undefined)
      throw new ItemError(
        'INVALID_SEQUENCE',
        `letter ${ch} is not in this checkpoint's '${m.alphabet}' vocabulary (seq_type ${seqType})`,
      );
    return id;
  });
  const truncated = ids.length > m.maxResidues;
  if (truncated) ids = trunc === 'right' ? ids.slice(0, m.maxResidues) : ids.slice(-m.maxResidues);
  return { ids, seqType, pooling, truncated };
}

function noHeadMessage(task) {
  return (
    `task ${task} needs a fine-tuned LucaOneTasks head, and LucaOne ships none; the ONNX export in ${m.dir} has no ` +
    `${task}_logits output: put the head in <LUCAONE_MODEL_PATH>/heads/${task}/ and export again with models/lucaone/tools/export_onnx.py`
  );
}

const itemError = (code, message) => ({ error: { code, message } });

export function preprocess(batch, task) {
  if (!TASKS.includes(task))
    throw new ModelError('INVALID_REQUEST', `unknown task '${task}'; lucaone serves ${TASKS.join(', ')}`);
  const outputs = new Array(batch.length).fill(null);
  const rows = [];
  batch.forEach((item, i) => {
    if (HEAD_TASKS.includes(task) && !(task in m.heads)) {
      outputs[i] = itemError('MODEL_NOT_LOADED', noHeadMessage(task));
      return;
    }
    try {
      rows.push({ i, ...prepare(item, task) });
    } catch (e) {
      if (!(e instanceof ItemError)) throw e;
      outputs[i] = itemError(e.code, e.message);
    }
  });
  plans.set(batch, { outputs, rows });
  if (!rows.length) return {};
  // [CLS] ids [SEP], right-padded with [PAD]; token types over [CLS]..[SEP], [PAD] (0) on padding, as batch_tensors.
  const width = Math.max(...rows.map((r) => r.ids.length)) + 2;
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(m.pad));
  const types = new BigInt64Array(rows.length * width).fill(BigInt(m.pad));
  rows.forEach((r, row) => {
    const seq = [m.cls, ...r.ids, m.sep];
    seq.forEach((id, j) => {
      ids[row * width + j] = BigInt(id);
      types[row * width + j] = BigInt(TOKEN_TYPE[r.seqType]);
    });
  });
  return {
    input_ids: { type: 'int64', data: ids, dims: [rows.length, width] },
    token_type_ids: { type: 'int64', data: types, dims: [rows.length, width] },
  };
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

function softmax(values) {
  const top = Math.max(...values);
  const e = values.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function labelNames(head, n) {
  return Array.isArray(head.labels) && head.labels.length === n
    ? [...head.labels]
    : Array.from({ length: n }, (_, i) => String(i));
}

/** TaskHead.describe: one item's output from its logits, with LucaOneTasks' output activation. */
function describe(head, logits) {
  if (head.output_mode === 'regression') {
    const values = head.sigmoid ? logits.map(sigmoid) : logits;
    return { value: values.length === 1 ? values[0] : values, output_mode: 'regression' };
  }
  if (head.output_mode === 'binary_class') {
    const p = sigmoid(logits[0]);
    const names = labelNames(head, 2);
    return {
      label: p >= 0.5 ? names[1] : names[0],
      probability: p,
      confidence: p >= 0.5 ? p : 1 - p,
      threshold: 0.5,
      output_mode: 'binary_class',
    };
  }
  if (head.output_mode === 'multi_class') {
    const probs = head.sigmoid ? logits.map(sigmoid) : softmax(logits);
    const names = labelNames(head, probs.length);
    let best = 0;
    for (let j = 1; j < probs.length; j++) if (probs[j] > probs[best]) best = j;
    return {
      label: names[best],
      confidence: probs[best],
      probabilities: Object.fromEntries(names.map((n, j) => [n, probs[j]])),
      output_mode: 'multi_class',
    };
  }
  const probs = logits.map(sigmoid);
  const names = labelNames(head, probs.length);
  return {
    labels: names.filter((_, j) => probs[j] >= 0.5),
    probabilities: Object.fromEntries(names.map((n, j) => [n, probs[j]])),
    threshold: 0.5,
    output_mode: 'multi_label',
  };
}

export function postprocess(outputs, batch, task) {
  const plan = plans.get(batch);
  plans.delete(batch);
  const { data, dims } = outputs.last_hidden_state ?? { data: [], dims: [0, 0, 0] };
  const [, width, size] = dims;
  const logits = HEAD_TASKS.includes(task) ? outputs[`${task}_logits`] : null;
  plan.rows.forEach((r, row) => {
    const common = {
      seq_type: r.seqType,
      token_type_id: TOKEN_TYPE[r.seqType],
      tokens: r.ids.length + 2,
      truncated: r.truncated,
    };
    if (logits) {
      const n = logits.dims[1];
      plan.outputs[r.i] = {
        ...describe(m.heads[task], Array.from(logits.data.slice(row * n, row * n + n), Number)),
        ...common,
      };
      return;
    }
    // cls: the [CLS] position; mean: the residues, [CLS] and [SEP] left out (utils.matrix_2_vector).
    const [from, to] = r.pooling === 'cls' ? [0, 1] : [1, r.ids.length + 1];
    const vec = new Array(size).fill(0);
    for (let t = from; t < to; t++) for (let k = 0; k < size; k++) vec[k] += data[(row * width + t) * size + k];
    for (let k = 0; k < size; k++) vec[k] /= to - from;
    plan.outputs[r.i] = { embedding: vec, dimension: size, pooling: r.pooling, ...common };
  });
  return plan.outputs;
}
