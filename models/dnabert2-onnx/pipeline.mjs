// DNABERT-2 exported to ONNX (models/dnabert2/tools/export_onnx.py): everything around the
// network in JavaScript, mirroring models/dnabert2/model.py option for option and output for
// output. The export lives outside the package, in DNABERT2_ONNX_PATH; see MODEL_CARD.md.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ModelError } from 'isomodel/worker';
import { loadTokenizer } from './bpe-tokenizer.mjs';

const DEFAULT_PATH = '/data/models/DNABERT_2-onnx';
const FILES = ['model.onnx', 'tokenizer.json', 'isomodel_onnx.json'];
const FORMAT = 'isomodel-dnabert2-onnx';
const TASKS = ['embedding', 'promoter_prediction'];
const POOLINGS = ['mean', 'cls', 'max'];
const NEGATIVE_WORDS = ['non', 'not', 'no_', 'negative'];

let m = null; // what setup learnt: folder, tokenizer, limits, head
const plans = new WeakMap(); // batch -> its encodings, from preprocess to postprocess

const fail = (message) => new ModelError('MODEL_NOT_LOADED', message);

function envInt(env, name, fallback, minimum) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw fail(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  const value = Number.parseInt(raw, 10);
  if (value < minimum) throw fail(`${name} must be >= ${minimum}, got ${value}`);
  return value;
}

/** Which logit is "promoter": as model.py's promoter_label_index (override, a "prom" label, else 1). */
export function promoterLabelIndex(id2label, numLabels, override) {
  if (override) {
    let index;
    if (/^\d+$/.test(override)) index = Number(override);
    else {
      const matches = Object.entries(id2label).filter(([, name]) => name === override);
      if (matches.length !== 1)
        throw fail(
          `DNABERT2_PROMOTER_LABEL=${JSON.stringify(override)} is not one of the config's labels ${JSON.stringify(Object.values(id2label).sort())}`,
        );
      index = Number(matches[0][0]);
    }
    if (!(index >= 0 && index < numLabels))
      throw fail(`DNABERT2_PROMOTER_LABEL=${JSON.stringify(override)} is out of range for ${numLabels} labels`);
    return index;
  }
  const named = Object.entries(id2label)
    .filter(
      ([, name]) => name.toLowerCase().includes('prom') && !NEGATIVE_WORDS.some((w) => name.toLowerCase().includes(w)),
    )
    .map(([i]) => Number(i));
  return named.length === 1 && named[0] >= 0 && named[0] < numLabels ? named[0] : 1;
}

/** The export folder, checked and read; the host opens the model.onnx this returns. */
export function modelPath(ctx) {
  const dir = resolve(ctx.modelDir, ctx.env.DNABERT2_ONNX_PATH || DEFAULT_PATH);
  const missing = FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    const where = existsSync(dir) ? `missing: ${missing.join(', ')}` : 'folder does not exist';
    throw fail(
      `DNABERT-2 ONNX export not found: put model.onnx, tokenizer.json and isomodel_onnx.json (written by ` +
        `models/dnabert2/tools/export_onnx.py from the DNABERT-2 weights) in ${dir} (set DNABERT2_ONNX_PATH) [${where}]`,
    );
  }
  let info;
  let tokenizer;
  try {
    info = JSON.parse(readFileSync(join(dir, 'isomodel_onnx.json'), 'utf8'));
    tokenizer = loadTokenizer(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  } catch (e) {
    throw fail(`cannot load the DNABERT-2 ONNX export from ${dir}: ${e.name}: ${e.message}`);
  }
  if (info.format !== FORMAT)
    throw fail(
      `${join(dir, 'isomodel_onnx.json')} is not a DNABERT-2 export (format ${JSON.stringify(info.format)}, expected ${FORMAT})`,
    );
  if (tokenizer.maxId >= info.vocab_size)
    throw fail(
      `tokenizer.json has token id ${tokenizer.maxId} but the exported model's vocab_size is ${info.vocab_size}`,
    );
  const numLabels = Number(info.num_labels) || 0;
  m = {
    dir,
    info,
    tokenizer,
    padId: tokenizer.tokenId('[PAD]') ?? 0,
    // Tokens per sequence, [CLS] and [SEP] included, as the Python adapter's DNABERT2_MAX_TOKENS.
    maxTokens: envInt(ctx.env, 'DNABERT2_MAX_TOKENS', Number(info.max_position_embeddings), 3),
    numLabels,
    id2label: info.id2label ?? {},
    promoterIndex: numLabels === 2 ? promoterLabelIndex(info.id2label ?? {}, 2, ctx.env.DNABERT2_PROMOTER_LABEL) : null,
  };
  return join(dir, 'model.onnx');
}

export function setup(_ctx, io) {
  for (const name of ['input_ids', 'attention_mask'])
    if (!io.inputNames.includes(name)) throw fail(`${m.dir}/model.onnx has no input ${name}`);
  if (!io.outputNames.includes('last_hidden_state')) throw fail(`${m.dir}/model.onnx has no output last_hidden_state`);
  if (m.numLabels && !io.outputNames.includes('logits'))
    throw fail(`${m.dir}/model.onnx has no logits output, but isomodel_onnx.json says ${m.numLabels} labels`);
  console.error(
    `[dnabert2-onnx] loaded ${m.dir}/model.onnx (hidden ${m.info.hidden_size}, ${m.info.num_hidden_layers} layers, vocab ${m.info.vocab_size}, ` +
      `classifier labels ${m.numLabels}); max ${m.maxTokens} tokens`,
  );
}

function boolOption(options, name, fallback) {
  const value = name in options ? options[name] : fallback;
  if (typeof value !== 'boolean') throw new ModelError('INVALID_REQUEST', `option ${name} must be true or false`);
  return value;
}

function noHeadMessage() {
  const why =
    m.numLabels === 0
      ? `the ONNX export in ${m.dir} has no logits output: the checkpoint it was exported from had no sequence-classification head (classifier.weight)`
      : `the classification head exported in ${m.dir} has ${m.numLabels} labels, not 2`;
  return (
    'promoter_prediction needs a DNABERT-2 checkpoint fine-tuned for promoter vs non-promoter classification ' +
    `(BertForSequenceClassification with 2 labels), exported with models/dnabert2/tools/export_onnx.py; ${why}. ` +
    'The pre-trained DNABERT-2-117M only supports the embedding task.'
  );
}

const itemError = (code, message) => ({ error: { code, message } });

export function preprocess(batch, task) {
  if (!TASKS.includes(task)) throw new ModelError('INVALID_REQUEST', `unknown task ${JSON.stringify(task)}`);
  const outputs = new Array(batch.length).fill(null);
  const rows = [];
  if (task === 'promoter_prediction' && m.promoterIndex === null)
    outputs.fill(itemError('MODEL_NOT_LOADED', noHeadMessage()));
  else {
    batch.forEach((item, i) => {
      const options = item.options ?? {};
      try {
        if (task === 'embedding') {
          const pooling = 'pooling' in options ? options.pooling : 'mean';
          if (!POOLINGS.includes(pooling))
            throw new ModelError('INVALID_REQUEST', `option pooling must be one of ${POOLINGS.join(', ')}`);
          boolOption(options, 'include_special_tokens', false);
        }
        boolOption(options, 'return_tokens', false);
        const truncate = boolOption(options, 'truncation', true);
        const enc = m.tokenizer.encode(item.sequence.toUpperCase(), m.maxTokens);
        if (enc.truncated && !truncate) {
          throw new ModelError(
            'SEQUENCE_TOO_LONG',
            `sequence is ${enc.untruncatedLength} tokens ([CLS]/[SEP] included), over the limit of ${m.maxTokens} ` +
              '(DNABERT2_MAX_TOKENS); send a shorter sequence or allow truncation',
          );
        }
        rows.push({ i, enc });
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        outputs[i] = itemError(e.code, e.message);
      }
    });
  }
  plans.set(batch, { outputs, rows });
  if (!rows.length) return {};
  // Right-padded with [PAD]; the mask keeps padded keys out of attention, so a row's answer does not depend on its batch.
  const width = Math.max(...rows.map((r) => r.enc.ids.length));
  const ids = new BigInt64Array(rows.length * width).fill(BigInt(m.padId));
  const mask = new BigInt64Array(rows.length * width);
  rows.forEach(({ enc }, row) => {
    enc.ids.forEach((id, j) => {
      ids[row * width + j] = BigInt(id);
      mask[row * width + j] = 1n;
    });
  });
  return {
    input_ids: { type: 'int64', data: ids, dims: [rows.length, width] },
    attention_mask: { type: 'int64', data: mask, dims: [rows.length, width] },
  };
}

/** Pooled hidden state of one row, as model.py's _embedding. */
function pool(hidden, dims, row, enc, options) {
  const [, width, size] = dims;
  const at = (t, k) => hidden[(row * width + t) * size + k];
  const pooling = options.pooling ?? 'mean';
  const vec = new Array(size);
  if (pooling === 'cls') {
    for (let k = 0; k < size; k++) vec[k] = at(0, k);
  } else {
    const all = options.include_special_tokens === true;
    let chosen = enc.ids.map((_, t) => t).filter((t) => all || !enc.specialMask[t]);
    if (chosen.length === 0) chosen = enc.ids.map((_, t) => t); // cannot happen for a non-empty sequence
    for (let k = 0; k < size; k++) {
      let acc = pooling === 'mean' ? 0 : -Infinity;
      for (const t of chosen) acc = pooling === 'mean' ? acc + at(t, k) : Math.max(acc, at(t, k));
      vec[k] = pooling === 'mean' ? acc / chosen.length : acc;
    }
  }
  return { embedding: vec, dimension: size, pooling };
}

function softmax(values) {
  const top = Math.max(...values);
  const e = values.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function promoter(logits, row) {
  const n = m.numLabels;
  const p = softmax(Array.from(logits.slice(row * n, row * n + n), Number));
  let best = 0;
  for (let j = 1; j < n; j++) if (p[j] > p[best]) best = j;
  return {
    prediction: p[m.promoterIndex],
    confidence: p[best],
    details: {
      class: best === m.promoterIndex ? 'promoter' : 'non_promoter',
      probability: p[best],
      label: m.id2label[String(best)] ?? `LABEL_${best}`,
      probabilities: p,
      promoter_label_index: m.promoterIndex,
    },
  };
}

export function postprocess(outputs, batch, task) {
  const plan = plans.get(batch);
  plans.delete(batch);
  const hidden = outputs.last_hidden_state;
  plan.rows.forEach(({ i, enc }, row) => {
    const options = batch[i].options ?? {};
    const out =
      task === 'embedding' ? pool(hidden.data, hidden.dims, row, enc, options) : promoter(outputs.logits.data, row);
    out.num_tokens = enc.ids.length;
    out.truncated = enc.truncated;
    if (options.return_tokens === true) out.tokens = enc.tokens;
    plan.outputs[i] = out;
  });
  return plan.outputs;
}
