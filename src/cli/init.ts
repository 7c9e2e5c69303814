// `isomodel init <name> --runtime python|node [--type T]`: scaffolds a working model package of one
// input type (docs/models.md): a manifest with one task, model code that does something real with
// that type's `item.input`, and a model card to fill in. The default type (sequence) is the
// package `init` has always made.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isValidModelName } from '../manifest/load.js';
import { INPUT_TYPES, type InputType } from '../manifest/schema.js';

export type Runtime = 'python' | 'node';
export const INIT_TYPES = INPUT_TYPES;

interface Scaffold {
  /** The task's YAML lines after `- name:` (indented by four spaces). */
  task: string;
  taskName: string;
  python: string;
  node: string;
  /** What the next-steps line sends: a JSON body, or a file of the type (image, audio) as a raw body. */
  example: string | { file: string; contentType: string };
}

const PY_HEAD = `"""Model code: isomodel runs this in its own worker process (docs/models.md, docs/worker-protocol.md)."""
`;
const NODE_HEAD = `// Model code: isomodel runs this in its own worker process (docs/models.md, docs/worker-protocol.md).
`;

const SCAFFOLDS: Record<InputType, Scaffold> = {
  sequence: {
    taskName: 'sequence_length',
    task: `    description: Length and base composition of a sequence (replace with your task).
    sequence_types: [DNA, RNA]
    max_length: 5120
    input: { type: string, description: A DNA or RNA sequence, example: ACGTACGT }
    output: { type: object, description: 'length and counts per letter' }`,
    python: `${PY_HEAD}from collections import Counter

from isomodel_worker import Model


class MyModel(Model):
    def setup(self, ctx):
        # Load weights from ctx.data_dir here; this runs once per replica, before traffic.
        self.name = ctx.name

    def predict(self, batch, task):
        # batch: [{"sequence": "ACGT", "options": {...}}, ...]; return one dict per item.
        return [{"length": len(item["sequence"]), "counts": dict(Counter(item["sequence"]))} for item in batch]
`,
    node: `${NODE_HEAD}export function setup(ctx) {
  // Load weights from ctx.dataDir here; this runs once per replica, before traffic.
  void ctx;
}

// batch: [{ sequence: 'ACGT', options: {...} }, ...]; return one object per item.
export function predict(batch) {
  return batch.map(({ sequence }) => {
    const counts = {};
    for (const ch of sequence) counts[ch] = (counts[ch] ?? 0) + 1;
    return { length: sequence.length, counts };
  });
}
`,
    example: `{"sequence": "ACGTACGT"}`,
  },

  text: {
    taskName: 'text_stats',
    task: `    description: Characters, words and lines of a text (replace with your task).
    input_type: text
    max_length: 10000
    input: { type: string, description: Any UTF-8 text, example: 'Hello, world' }
    output: { type: object, description: 'characters, words, lines' }`,
    python: `${PY_HEAD}from isomodel_worker import Model


class MyModel(Model):
    def setup(self, ctx):
        # Load weights (a tokenizer, a classifier) from ctx.data_dir here; once per replica.
        pass

    def predict(self, batch, task):
        # batch: [{"input": "some text", "options": {...}}, ...]; the gateway checked the length.
        return [{"characters": len(item["input"]), "words": len(item["input"].split()),
                 "lines": item["input"].count("\\n") + 1} for item in batch]
`,
    node: `${NODE_HEAD}export function setup(ctx) {
  // Load weights (a tokenizer, a classifier) from ctx.dataDir here; once per replica.
  void ctx;
}

// batch: [{ input: 'some text', options: {...} }, ...]; the gateway checked the length.
export function predict(batch) {
  return batch.map(({ input }) => ({
    characters: [...input].length,
    words: input.split(/\\s+/).filter(Boolean).length,
    lines: input.split('\\n').length,
  }));
}
`,
    example: `{"input": "Hello, world"}`,
  },

  json: {
    taskName: 'summarise_values',
    task: `    description: Count, sum and mean of a list of numbers (replace with your task).
    input_type: json
    max_bytes: 65536
    # Every input is checked against this JSON Schema before the model sees it.
    schema:
      type: object
      required: [values]
      additionalProperties: false
      properties:
        values: { type: array, items: { type: number }, minItems: 1, maxItems: 10000 }
        label: { type: string, maxLength: 100 }
    input: { type: object, description: '{"values": [numbers], "label"?: string}', example: { values: [1, 2, 3.5] } }
    output: { type: object, description: 'count, sum, mean, label' }`,
    python: `${PY_HEAD}from isomodel_worker import Model


class MyModel(Model):
    def predict(self, batch, task):
        # batch: [{"input": {"values": [...], "label": ...}, "options": {...}}, ...]
        # item["input"] already matches the schema in model.yaml.
        out = []
        for item in batch:
            values = item["input"]["values"]
            out.append({"count": len(values), "sum": sum(values), "mean": sum(values) / len(values),
                        "label": item["input"].get("label")})
        return out
`,
    node: `${NODE_HEAD}// batch: [{ input: { values: [...], label }, options: {...} }, ...]
// item.input already matches the schema in model.yaml.
export function predict(batch) {
  return batch.map(({ input }) => {
    const sum = input.values.reduce((a, b) => a + b, 0);
    return { count: input.values.length, sum, mean: sum / input.values.length, label: input.label ?? null };
  });
}
`,
    example: `{"input": {"values": [1, 2, 3.5]}}`,
  },

  tensor: {
    taskName: 'row_sums',
    task: `    description: Sum of each row of a matrix (replace with your task).
    input_type: tensor
    # Named inputs as the Open Inference Protocol describes them; -1 = any size.
    tensors:
      - { name: x, datatype: FP32, shape: [-1, -1] }
    max_elements: 1000000
    input: { type: object, description: '{"x": [[...], ...]} or {"x": {"shape": [r, c], "data": [flat]}}', example: { x: [[1, 2], [3, 4]] } }
    output: { type: object, description: 'shape and row_sums' }`,
    python: `${PY_HEAD}from isomodel_worker import Model


class MyModel(Model):
    def predict(self, batch, task):
        # item["input"]["x"] = {"datatype": "FP32", "shape": [rows, cols], "data": [row-major, flat]}
        # (numpy: np.asarray(t["data"], dtype=np.float32).reshape(t["shape"]))
        out = []
        for item in batch:
            t = item["input"]["x"]
            rows, cols = t["shape"]
            data = t["data"]
            out.append({"shape": t["shape"], "row_sums": [sum(data[r * cols:(r + 1) * cols]) for r in range(rows)]})
        return out
`,
    node: `${NODE_HEAD}// item.input.x = { datatype: 'FP32', shape: [rows, cols], data: [row-major, flat] }
export function predict(batch) {
  return batch.map(({ input }) => {
    const { shape, data } = input.x;
    const [rows, cols] = shape;
    const rowSums = [];
    for (let r = 0; r < rows; r++) rowSums.push(data.slice(r * cols, (r + 1) * cols).reduce((a, b) => a + b, 0));
    return { shape, row_sums: rowSums };
  });
}
`,
    example: `{"input": {"x": [[1, 2], [3, 4]]}}`,
  },

  image: {
    taskName: 'describe_image',
    task: `    description: Format, size and a checksum of an image (replace with your task).
    input_type: image
    formats: [png, jpeg]
    max_bytes: 5242880
    max_pixels: 40000000
    input: { type: image, description: 'PNG or JPEG: base64, a data: URL, a raw image/* body or multipart field "file"' }
    output: { type: object, description: 'format, width, height, bytes, sha256' }`,
    python: `${PY_HEAD}import hashlib

from isomodel_worker import Model, media_bytes


class MyModel(Model):
    def predict(self, batch, task):
        # item["input"] = {"format": "png", "media_type": "image/png", "bytes": n, "width": w, "height": h,
        #                  "data": "<base64>"}; the gateway sniffed the format and checked the size.
        # Decode the pixels with Pillow (Debian python3-pil): Image.open(io.BytesIO(raw)).
        out = []
        for item in batch:
            img = item["input"]
            raw = media_bytes(img)  # the file's bytes (img["data"] is their base64)
            out.append({"format": img["format"], "width": img["width"], "height": img["height"],
                        "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()})
        return out
`,
    node: `${NODE_HEAD}import { createHash } from 'node:crypto';
import { mediaBytes } from 'isomodel/worker';

// item.input = { format: 'png', media_type: 'image/png', bytes, width, height, data: '<base64>' };
// the gateway sniffed the format and checked the size. Decode the pixels with a library of your
// package.json (e.g. sharp, pngjs, jpeg-js).
export function predict(batch) {
  return batch.map(({ input }) => {
    const raw = mediaBytes(input); // the file's bytes (input.data is their base64)
    return { format: input.format, width: input.width, height: input.height, bytes: raw.length, sha256: createHash('sha256').update(raw).digest('hex') };
  });
}
`,
    example: { file: 'picture.png', contentType: 'image/png' },
  },

  audio: {
    taskName: 'loudness',
    task: `    description: Duration and RMS level of a 16-bit PCM WAV (replace with your task).
    input_type: audio
    formats: [wav]
    max_bytes: 10485760
    max_seconds: 600
    input: { type: audio, description: 'WAV: base64, a data: URL, a raw audio/wav body or multipart field "file"' }
    output: { type: object, description: 'sample_rate, channels, duration_s, rms (0..1 of full scale)' }`,
    python: `${PY_HEAD}import array
import io
import math
import sys
import wave

from isomodel_worker import Model, item_error, media_bytes


class MyModel(Model):
    def predict(self, batch, task):
        # item["input"] = {"format": "wav", "media_type": "audio/wav", "data": "<base64>",
        #                  "bytes": n, "sample_rate": 16000, "channels": 1, "bits_per_sample": 16, "duration_s": 1.5}
        return [self.one(item["input"]) for item in batch]

    def one(self, audio):
        with wave.open(io.BytesIO(media_bytes(audio))) as w:
            if w.getsampwidth() != 2:
                return item_error("INVALID_INPUT", "this model reads 16-bit PCM only")
            samples = array.array("h", w.readframes(w.getnframes()))
            if sys.byteorder == "big":
                samples.byteswap()  # WAV is little-endian
            rate, channels = w.getframerate(), w.getnchannels()
        rms = math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768 if samples else 0.0
        return {"sample_rate": rate, "channels": channels, "duration_s": len(samples) / channels / rate, "rms": rms}
`,
    node: `${NODE_HEAD}import { mediaBytes } from 'isomodel/worker';

// item.input = { format: 'wav', media_type: 'audio/wav', bytes, data: '<base64>', sample_rate, channels, bits_per_sample, duration_s }
// (the gateway parsed the header). This reads the 16-bit PCM samples of the "data" chunk.
function pcm16(wav) {
  for (let at = 12; at + 8 <= wav.length; ) {
    const id = wav.toString('latin1', at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === 'data') return wav.subarray(at + 8, Math.min(wav.length, at + 8 + size));
    at += 8 + size + (size % 2);
  }
  return Buffer.alloc(0);
}

export function predict(batch) {
  return batch.map(({ input }) => {
    if (input.bits_per_sample !== 16) return { error: { code: 'INVALID_INPUT', message: 'this model reads 16-bit PCM only' } };
    const data = pcm16(mediaBytes(input));
    let sum = 0;
    const n = Math.floor(data.length / 2);
    for (let i = 0; i < n; i++) sum += data.readInt16LE(2 * i) ** 2;
    return { sample_rate: input.sample_rate, channels: input.channels, duration_s: n / input.channels / input.sample_rate, rms: n ? Math.sqrt(sum / n) / 32768 : 0 };
  });
}
`,
    example: { file: 'recording.wav', contentType: 'audio/wav' },
  },

  chat: {
    taskName: 'chat',
    task: `    description: Echoes the last user message word by word (replace with your model).
    input_type: chat
    max_messages: 100
    max_length: 32000
    input: { type: chat, description: 'OpenAI-style messages [{role, content}]' }
    # type text: the task writes text (outputs and stream chunks carry text), as OpenAI's routes expect.
    output: { type: text, description: 'text (the reply); streamed as chunks {text}' }`,
    python: `${PY_HEAD}from isomodel_worker import Model, item_error


def reply_words(messages):
    """The reply, as the words a stream sends one by one."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users:
        return None
    return ("You said: " + users[-1]).split(" ")


class MyModel(Model):
    def predict(self, batch, task):
        # item["input"] = {"messages": [{"role": "system"|"user"|"assistant"|..., "content": "..."}]}
        out = []
        for item in batch:
            words = reply_words(item["input"]["messages"])
            out.append(item_error("INVALID_INPUT", "no user message") if words is None else {"text": " ".join(words)})
        return out

    def stream(self, batch, task):
        # Yield (item index, chunk) pairs; return the final outputs (one per item).
        # /v1/chat/completions and the native SSE route send each chunk's "text" as it comes.
        out = []
        for i, item in enumerate(batch):
            words = reply_words(item["input"]["messages"])
            if words is None:
                out.append(item_error("INVALID_INPUT", "no user message"))
                continue
            for n, word in enumerate(words):
                yield i, {"text": (" " if n else "") + word}
            out.append({"text": " ".join(words)})
        return out
`,
    node: `${NODE_HEAD}function replyWords(messages) {
  const last = messages.findLast((m) => m.role === 'user');
  return last ? \`You said: \${last.content}\`.split(' ') : null;
}

// item.input = { messages: [{ role: 'system'|'user'|'assistant'|..., content: '...' }] }
export function predict(batch) {
  return batch.map(({ input }) => {
    const words = replyWords(input.messages);
    return words ? { text: words.join(' ') } : { error: { code: 'INVALID_INPUT', message: 'no user message' } };
  });
}

// emit(index, chunk) sends one chunk; /v1/chat/completions and the native SSE route send each
// chunk's text as it comes. Return the final outputs (one per item).
export function stream(batch, _task, emit) {
  return batch.map(({ input }, i) => {
    const words = replyWords(input.messages);
    if (!words) return { error: { code: 'INVALID_INPUT', message: 'no user message' } };
    words.forEach((w, n) => emit(i, { text: (n ? ' ' : '') + w }));
    return { text: words.join(' ') };
  });
}
`,
    example: `{"input": {"messages": [{"role": "user", "content": "hello"}]}}`,
  },
};

function manifest(name: string, runtime: Runtime, type: InputType): string {
  const s = SCAFFOLDS[type];
  return `# ${name}: model package scaffolded by \`isomodel init --type ${type}\` (docs/models.md). Edit the
# task, then call POST /v1/models/reload (or just save: a running gateway watches this folder).
name: ${name}
version: 0.1.0
description: ${name} (describe what it predicts, on which data it was trained)
runtime: ${runtime}
entry: ${runtime === 'python' ? 'model.py' : 'index.mjs'}
isolation: process
tasks:
  - name: ${s.taskName}
${s.task}
resources: { memory_mb: 256, cpus: 1, timeout_ms: 30000 }
batching: { max_batch_size: 16, max_delay_ms: 2 }
scaling: { min_replicas: 1, max_replicas: 1, idle_timeout_s: 0 }
`;
}

/** A curl command the scaffolded package answers (the CLI's next-steps line): a JSON body, or a file for media. */
export function exampleCommand(name: string, type: InputType, url = 'http://127.0.0.1:8000'): string {
  const route = `${url}/models/${name}/predict`;
  const ex = SCAFFOLDS[type].example;
  if (typeof ex === 'string') return `curl -s ${route} -H 'content-type: application/json' -d '${ex}'`;
  return `curl -s ${route} -H 'content-type: ${ex.contentType}' --data-binary @${ex.file}`;
}

export function initPackage(name: string, runtime: Runtime, modelsDir: string, type: InputType = 'sequence'): string {
  if (!isValidModelName(name))
    throw new Error(`invalid model name "${name}": use lowercase letters, digits, ".", "_" and "-"`);
  if (!(INIT_TYPES as readonly string[]).includes(type))
    throw new Error(`unknown input type "${type}": use one of ${INIT_TYPES.join(', ')}`);
  const dir = resolve(modelsDir, name);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  const s = SCAFFOLDS[type];
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'model.yaml'), manifest(name, runtime, type));
  if (runtime === 'python') {
    writeFileSync(join(dir, 'model.py'), s.python);
    writeFileSync(join(dir, 'requirements.txt'), '# this model needs only the Python standard library\n');
  } else {
    writeFileSync(join(dir, 'index.mjs'), s.node);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify(
        { name: `isomodel-model-${name}`, version: '0.1.0', private: true, type: 'module', dependencies: {} },
        null,
        2,
      ) + '\n',
    );
  }
  writeFileSync(join(dir, 'data', '.gitkeep'), '');
  writeFileSync(
    join(dir, 'MODEL_CARD.md'),
    `# ${name}\n\n- Input: ${type} (task ${s.taskName})\n- Data: (what it was trained on)\n- Method: (how)\n- Measured: (accuracy, with the command that measures it)\n- Limits: (where it must not be used)\n`,
  );
  return dir;
}
