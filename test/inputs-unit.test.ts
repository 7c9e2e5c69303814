// The non-sequence input types (src/validation/inputs/) called directly, without a gateway: text,
// JSON Schema, chat, tensors, base64, and image/audio sniffing with byte fixtures built here
// (whole, truncated and malformed). test/inputs.test.ts checks the same rules through every
// surface of a real gateway; these run in a second, fast enough for `npm run mutate -- inputs`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsoError, type ErrorCode } from '../src/errors.js';
import { taskSchema } from '../src/manifest/schema.js';
import { decodeBase64, decodedLength } from '../src/validation/inputs/base64.js';
import { CHAT_ROLES, validateChat } from '../src/validation/inputs/chat.js';
import { isRawMedia, takesStrings, unsupportedOn, validateInput } from '../src/validation/inputs/index.js';
import { compileSchema, validateJson } from '../src/validation/inputs/json.js';
import { RawMedia, validateMedia, type MediaRule } from '../src/validation/inputs/media-input.js';
import {
  formatFromMediaType,
  inspectAudio,
  inspectImage,
  MEDIA_TYPES,
  MediaError,
  sniffFormat,
} from '../src/validation/inputs/media.js';
import { TENSOR_DATATYPES, validateTensors, type TensorSpec } from '../src/validation/inputs/tensor.js';
import { codePoints, validateText } from '../src/validation/inputs/text.js';
import { makePng, makeWav } from './media.js';

/** The IsoError `fn` throws (fails when it throws nothing or something else). */
function errorOf(fn: () => unknown): IsoError {
  try {
    fn();
  } catch (e) {
    if (e instanceof IsoError) return e;
    throw e;
  }
  assert.fail('expected an IsoError');
}

function rejects(fn: () => unknown, code: ErrorCode, message: string | RegExp, details?: unknown): IsoError {
  const e = errorOf(fn);
  assert.equal(e.code, code, e.message);
  if (typeof message === 'string') assert.equal(e.message, message);
  else assert.match(e.message, message);
  if (details !== undefined) assert.deepEqual(e.details, details);
  return e;
}

/** The MediaError message inspecting `b` gives. */
function mediaError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MediaError, String(e));
    return e.message;
  }
  assert.fail('expected a MediaError');
}

// ---- byte fixtures ----

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** A baseline JPEG: SOI, APP0, SOF0 with the size, SOS, scan bytes, EOI. */
function makeJpeg(
  width: number,
  height: number,
  opts: { sof?: number; eoi?: boolean; pad?: number; fill?: boolean; rst?: boolean } = {},
): Buffer {
  const app0 = Buffer.concat([Buffer.from([0xff, 0xe0]), u16be(16), Buffer.from('JFIF\0', 'latin1'), Buffer.alloc(9)]);
  const sofBody = Buffer.concat([Buffer.from([8]), u16be(height), u16be(width), Buffer.from([1, 1, 0x11, 0])]);
  const sof = Buffer.concat([Buffer.from([0xff, opts.sof ?? 0xc0]), u16be(2 + sofBody.length), sofBody]);
  const sos = Buffer.concat([Buffer.from([0xff, 0xda]), u16be(8), Buffer.from([1, 1, 0, 0, 0x3f, 0])]);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    opts.fill ? Buffer.from([0xff, 0xff]) : Buffer.alloc(0),
    app0,
    opts.rst ? Buffer.from([0xff, 0xd0]) : Buffer.alloc(0),
    sof,
    sos,
    Buffer.from([0x12, 0x34, 0x56]),
    opts.eoi === false ? Buffer.alloc(0) : Buffer.from([0xff, 0xd9]),
    Buffer.alloc(opts.pad ?? 0),
  ]);
}

function makeGif(width: number, height: number, trailer = true): Buffer {
  const b = Buffer.alloc(14);
  b.write('GIF89a', 0, 'latin1');
  b.writeUInt16LE(width, 6);
  b.writeUInt16LE(height, 8);
  b[13] = trailer ? 0x3b : 0x00;
  return b;
}

function makeBmp(width: number, height: number, opts: { size?: number; offset?: number } = {}): Buffer {
  const b = Buffer.alloc(62);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(opts.size ?? b.length, 2);
  b.writeUInt32LE(opts.offset ?? 54, 10);
  b.writeInt32LE(width, 18);
  b.writeInt32LE(height, 22);
  return b;
}

function riff(kind: string, body: Buffer, declared?: number): Buffer {
  const h = Buffer.alloc(12);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(declared ?? body.length + 4, 4);
  h.write(kind, 8, 'latin1');
  return Buffer.concat([h, body]);
}

function webp(chunk: string, fill: (b: Buffer) => void): Buffer {
  const body = Buffer.alloc(22);
  body.write(chunk, 0, 'latin1');
  const whole = riff('WEBP', body);
  fill(whole);
  return whole;
}

function wavChunk(id: string, data: Buffer, len = data.length): Buffer {
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(len, 4);
  return Buffer.concat([h, data, data.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function fmtChunk(channels: number, rate: number, bits: number, len = 16): Buffer {
  const f = Buffer.alloc(Math.max(len, 16));
  f.writeUInt16LE(1, 0);
  f.writeUInt16LE(channels, 2);
  f.writeUInt32LE(rate, 4);
  f.writeUInt32LE((rate * channels * bits) / 8, 8);
  f.writeUInt16LE((channels * bits) / 8, 12);
  f.writeUInt16LE(bits, 14);
  return wavChunk('fmt ', f.subarray(0, len), len);
}

function makeFlac(rate: number, channels: number, bits: number, total: number, firstBlock = 0): Buffer {
  const b = Buffer.alloc(42);
  b.write('fLaC', 0, 'latin1');
  b[4] = firstBlock;
  // Bytes 18..25: rate (20 bits), channels-1 (3), bits-1 (5), total samples (36).
  const x = ((rate << 12) | ((channels - 1) << 9) | ((bits - 1) << 4) | Math.floor(total / 2 ** 32)) >>> 0;
  b.writeUInt32BE(x, 18);
  b.writeUInt32BE(total % 2 ** 32, 22);
  return b;
}

const imageRule = (over: Partial<MediaRule> = {}): MediaRule => ({
  kind: 'image',
  formats: ['png', 'jpeg', 'gif', 'bmp', 'webp'],
  maxBytes: 100_000,
  ...over,
});
const audioRule = (over: Partial<MediaRule> = {}): MediaRule => ({
  kind: 'audio',
  formats: ['wav', 'flac', 'ogg', 'mp3'],
  maxBytes: 100_000,
  ...over,
});

describe('text inputs', () => {
  it('counts code points, not UTF-16 units', () => {
    assert.equal(codePoints(''), 0);
    assert.equal(codePoints('abc'), 3);
    assert.equal(codePoints('a😀b'), 3);
    assert.equal(codePoints('😀😀'), 2);
    // A high surrogate at the end, or followed by a non-low one, counts alone.
    assert.equal(codePoints('a\ud83d'), 2);
    assert.equal(codePoints('\ud83dx'), 2);
    assert.equal(codePoints('\ud83d\ud83d'), 2);
    // Boundaries of the surrogate ranges.
    assert.equal(codePoints('\ud800\udc00'), 1);
    assert.equal(codePoints('\udbff\udfff'), 1);
    assert.equal(codePoints('\ud7ff\udc00'), 2);
    assert.equal(codePoints('\udc00\udc00'), 2);
    assert.equal(codePoints('\ud800\udbff'), 2);
    assert.equal(codePoints('\ud800\ue000'), 2);
  });

  it('takes a string within the limits and returns it unchanged', () => {
    const rule = { minLength: 2, maxLength: 3 };
    assert.equal(validateText('ab', rule, 'input'), 'ab');
    assert.equal(validateText('a😀c', rule, 'input'), 'a😀c');
    assert.equal(validateText('\ud800\udc00\udbff\udfff', rule, 'input'), '\ud800\udc00\udbff\udfff');
  });

  it('refuses a non-string, NUL, lone surrogates, and lengths outside the limits', () => {
    const rule = { minLength: 2, maxLength: 3 };
    rejects(() => validateText(5, rule, 'input'), 'INVALID_INPUT', 'input must be a string of text');
    rejects(() => validateText('a\u0000b', rule, 'input'), 'INVALID_INPUT', 'input contains a NUL character');
    rejects(
      () => validateText('ab\ud83d', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 3',
    );
    rejects(
      () => validateText('a\ud83dz', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 2',
    );
    rejects(
      () => validateText('\udc00ab', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 1',
    );
    rejects(
      () => validateText('ab\udfff', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 3',
    );
    rejects(
      () => validateText('\udbffa', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 1',
    );
    rejects(
      () => validateText('\ud800\ue000', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 1',
    );
    rejects(
      () => validateText('\ud800\udbff', rule, 'x'),
      'INVALID_INPUT',
      'x is not valid Unicode: a lone surrogate at position 1',
    );
    // Just outside the ranges: ordinary characters.
    assert.equal(validateText('\ud7ff\ue000', rule, 'x'), '\ud7ff\ue000');
    rejects(() => validateText('abcd', rule, 'x'), 'INPUT_TOO_LONG', 'x has 4 characters; the limit is 3', {
      length: 4,
      max_length: 3,
    });
    rejects(() => validateText('a', rule, 'x'), 'INVALID_INPUT', 'x has 1 characters; this task needs at least 2', {
      length: 1,
      min_length: 2,
    });
    rejects(() => validateText('', { minLength: 1, maxLength: 3 }, 'x'), 'INVALID_INPUT', 'x is empty', {
      length: 0,
      min_length: 1,
    });
  });
});

describe('JSON inputs', () => {
  const schema = {
    type: 'object',
    properties: { n: { type: 'integer' }, kind: { enum: ['a', 'b'] } },
    required: ['n'],
    additionalProperties: false,
  };

  it('takes a value that matches, and returns it as is', () => {
    const v = { n: 3, kind: 'a' };
    assert.equal(validateJson(v, { schema, maxBytes: 100 }, 'input'), v);
  });

  it('names the first failing keyword, its path and the schema path', () => {
    rejects(
      () => validateJson({}, { schema, maxBytes: 100 }, 'input'),
      'INVALID_INPUT',
      'input does not match the task\'s JSON Schema: (the input) is missing the required property "n"',
      {
        path: '',
        keyword: 'required',
        schema_path: '#/required',
      },
    );
    rejects(
      () => validateJson({ n: 1, z: 2 }, { schema, maxBytes: 100 }, 'input'),
      'INVALID_INPUT',
      'input does not match the task\'s JSON Schema: (the input) has the property "z", which the schema does not allow',
    );
    rejects(
      () => validateJson({ n: 1, kind: 'c' }, { schema, maxBytes: 100 }, 'input'),
      'INVALID_INPUT',
      'input does not match the task\'s JSON Schema: /kind must be one of ["a","b"]',
      {
        path: '/kind',
        keyword: 'enum',
        schema_path: '#/properties/kind/enum',
      },
    );
    rejects(
      () => validateJson({ n: 1.5 }, { schema, maxBytes: 100 }, 'input'),
      'INVALID_INPUT',
      "input does not match the task's JSON Schema: /n must be integer",
    );
  });

  it('refuses a missing value and one over max_bytes (measured as JSON text)', () => {
    rejects(() => validateJson(undefined, { schema, maxBytes: 100 }, 'in'), 'INVALID_INPUT', 'in is required');
    // {"n":1} is 7 bytes.
    assert.deepEqual(validateJson({ n: 1 }, { schema, maxBytes: 7 }, 'in'), { n: 1 });
    rejects(
      () => validateJson({ n: 1 }, { schema, maxBytes: 6 }, 'in'),
      'PAYLOAD_TOO_LARGE',
      'in is 7 bytes of JSON; the limit is 6',
      { bytes: 7, max_bytes: 6 },
    );
    // Bytes, not characters: "é" is 2 bytes in UTF-8.
    rejects(
      () => validateJson('é', { schema: {}, maxBytes: 3 }, 'in'),
      'PAYLOAD_TOO_LARGE',
      'in is 4 bytes of JSON; the limit is 3',
    );
  });

  it('compiles each schema once, draft-07 by default and 2020-12 when it says so', () => {
    const s = { type: 'string' };
    assert.equal(compileSchema(s), compileSchema(s));
    assert.notEqual(compileSchema(s), compileSchema({ type: 'string' }));
    // prefixItems is 2020-12 only: draft-07 ignores it (strict off), 2020-12 applies it.
    const tuple = { prefixItems: [{ type: 'number' }] };
    assert.equal(compileSchema(tuple)(['x']), true);
    assert.equal(compileSchema({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...tuple })(['x']), false);
    assert.throws(() => compileSchema({ type: 'no-such-type' }));
  });
});

describe('chat inputs', () => {
  const rule = { maxMessages: 3, maxLength: 10 };

  it('takes {messages} or the list, joins text parts, keeps names (cut to 64)', () => {
    const m = [{ role: 'user', content: 'hi' }];
    assert.deepEqual(validateChat(m, rule, 'c'), { messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(validateChat({ messages: m }, rule, 'c'), { messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(
      validateChat(
        [
          {
            role: 'system',
            content: [
              { type: 'text', text: 'ab' },
              { type: 'text', text: 'c' },
            ],
            name: 'n'.repeat(70),
          },
        ],
        rule,
        'c',
      ),
      { messages: [{ role: 'system', content: 'abc', name: 'n'.repeat(64) }] },
    );
    assert.deepEqual(validateChat([{ role: 'assistant', content: null }, { role: 'tool' }], rule, 'c'), {
      messages: [
        { role: 'assistant', content: '' },
        { role: 'tool', content: '' },
      ],
    });
    assert.deepEqual(validateChat([{ role: 'user', content: 'x', name: 5 }], rule, 'c').messages[0], {
      role: 'user',
      content: 'x',
    });
    assert.deepEqual([...CHAT_ROLES], ['system', 'developer', 'user', 'assistant', 'tool']);
    for (const role of CHAT_ROLES)
      assert.equal(validateChat([{ role, content: 'x' }], rule, 'c').messages[0]!.role, role);
  });

  it('refuses malformed conversations with the place of the fault', () => {
    const msg = 'c must be a list of messages {role, content} (or {messages: [...]})';
    rejects(() => validateChat('hi', rule, 'c'), 'INVALID_INPUT', msg);
    rejects(() => validateChat(null, rule, 'c'), 'INVALID_INPUT', msg);
    rejects(() => validateChat({ messages: 'x' }, rule, 'c'), 'INVALID_INPUT', msg);
    rejects(() => validateChat({}, rule, 'c'), 'INVALID_INPUT', msg);
    rejects(() => validateChat([], rule, 'c'), 'INVALID_INPUT', 'c holds no message');
    rejects(
      () => validateChat([{ role: 'user', content: 'a' }, 'x'], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[1] must be an object {role, content}',
    );
    rejects(() => validateChat([null], rule, 'c'), 'INVALID_INPUT', 'c.messages[0] must be an object {role, content}');
    rejects(() => validateChat([[]], rule, 'c'), 'INVALID_INPUT', 'c.messages[0] must be an object {role, content}');
    rejects(
      () => validateChat([{ role: 'boss', content: 'a' }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].role must be one of system, developer, user, assistant, tool',
    );
    rejects(
      () => validateChat([{ role: 5, content: 'a' }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].role must be one of system, developer, user, assistant, tool',
    );
    rejects(
      () => validateChat([{ role: 'user', content: 5 }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].content must be text or a list of text parts',
    );
    rejects(
      () => validateChat([{ role: 'user', content: ['x'] }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].content[0] must be a content part {type, text}',
    );
    rejects(
      () => validateChat([{ role: 'user', content: [{ type: 'text', text: 'a' }, null] }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].content[1] must be a content part {type, text}',
    );
    rejects(
      () => validateChat([{ role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].content[0] is a "image_url" part; only text parts are taken here',
    );
    rejects(
      () => validateChat([{ role: 'user', content: [{ type: 'x'.repeat(50) }] }], rule, 'c'),
      'INVALID_INPUT',
      `c.messages[0].content[0] is a "${'x'.repeat(29)} part; only text parts are taken here`,
    );
    rejects(
      () => validateChat([{ role: 'user', content: [{ type: 'text', text: 5 }] }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].content[0] is a "text" part; only text parts are taken here',
    );
    rejects(
      () => validateChat([{ role: 'user', content: 'a\u0000' }], rule, 'c'),
      'INVALID_INPUT',
      'c.messages[0].content contains a NUL character',
    );
  });

  it('bounds the messages and the characters over all of them', () => {
    const four = Array.from({ length: 4 }, () => ({ role: 'user', content: 'a' }));
    assert.equal(validateChat(four.slice(0, 3), rule, 'c').messages.length, 3);
    rejects(() => validateChat(four, rule, 'c'), 'INPUT_TOO_LONG', 'c holds 4 messages; the limit is 3', {
      messages: 4,
      max_messages: 3,
    });
    // 10 characters over all messages is the limit (code points: the emoji counts once).
    assert.equal(
      validateChat(
        [
          { role: 'user', content: 'abcd😀' },
          { role: 'assistant', content: 'efghi' },
        ],
        rule,
        'c',
      ).messages.length,
      2,
    );
    rejects(
      () =>
        validateChat(
          [
            { role: 'user', content: 'abcdef' },
            { role: 'assistant', content: 'ghijk' },
          ],
          rule,
          'c',
        ),
      'INPUT_TOO_LONG',
      'c has more than 10 characters of content',
      { max_length: 10 },
    );
  });
});

describe('tensor inputs', () => {
  const x: TensorSpec = { name: 'x', datatype: 'FP32', shape: [-1, 2] };
  const one = { tensors: [x], maxElements: 100 };

  it('takes a bare nested array, {data, shape} or a named tensor, flattening row-major', () => {
    const want = { x: { datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] } };
    assert.deepEqual(
      validateTensors(
        [
          [1, 2],
          [3, 4],
        ],
        one,
        't',
      ),
      want,
    );
    assert.deepEqual(validateTensors({ data: [1, 2, 3, 4], shape: [2, 2] }, one, 't'), want);
    assert.deepEqual(
      validateTensors(
        {
          data: [
            [1, 2],
            [3, 4],
          ],
          datatype: 'FP32',
        },
        one,
        't',
      ),
      want,
    );
    assert.deepEqual(validateTensors({ x: { data: [1, 2, 3, 4], shape: [2, 2] } }, one, 't'), want);
    assert.deepEqual(
      validateTensors(
        {
          x: [
            [1, 2],
            [3, 4],
          ],
        },
        one,
        't',
      ),
      want,
    );
    assert.deepEqual(validateTensors({ x: { data: [[5, 6]] } }, one, 't'), {
      x: { datatype: 'FP32', shape: [1, 2], data: [5, 6] },
    });
    // A single tensor named "data" is read by name, not as {data}.
    const named = { tensors: [{ name: 'data', datatype: 'INT8' as const, shape: [2] }], maxElements: 10 };
    assert.deepEqual(validateTensors({ data: [1, 2] }, named, 't'), {
      data: { datatype: 'INT8', shape: [2], data: [1, 2] },
    });
    assert.deepEqual(validateTensors({ data: { data: [3, 4] } }, named, 't'), {
      data: { datatype: 'INT8', shape: [2], data: [3, 4] },
    });
  });

  it('takes several named tensors and refuses unknown or missing ones', () => {
    const rule = {
      tensors: [
        { name: 'a', datatype: 'INT32' as const, shape: [2] },
        { name: 'b', datatype: 'BOOL' as const, shape: [1] },
      ],
      maxElements: 3,
    };
    assert.deepEqual(validateTensors({ a: [1, 2], b: [true] }, rule, 't'), {
      a: { datatype: 'INT32', shape: [2], data: [1, 2] },
      b: { datatype: 'BOOL', shape: [1], data: [true] },
    });
    rejects(() => validateTensors([1, 2], rule, 't'), 'INVALID_INPUT', 't must be an object of named tensors: a, b');
    rejects(() => validateTensors(null, rule, 't'), 'INVALID_INPUT', 't must be an object of named tensors: a, b');
    rejects(() => validateTensors('x', one, 't'), 'INVALID_INPUT', 't must be an object of named tensors: x');
    rejects(
      () => validateTensors({ a: [1, 2], b: [true], c: [1] }, rule, 't'),
      'INVALID_INPUT',
      't has an unknown tensor "c"; this task takes a, b',
    );
    rejects(
      () => validateTensors({ ['k'.repeat(80)]: [1] }, rule, 't'),
      'INVALID_INPUT',
      `t has an unknown tensor "${'k'.repeat(64)}"; this task takes a, b`,
    );
    rejects(() => validateTensors({ a: [1, 2] }, rule, 't'), 'INVALID_INPUT', 't is missing the tensor "b"');
    rejects(
      () => validateTensors({ data: [1, 2] }, rule, 't'),
      'INVALID_INPUT',
      't has an unknown tensor "data"; this task takes a, b',
    );
    // The element budget is shared: 2 + 1 fit in 3, and one more does not.
    rejects(
      () => validateTensors({ a: [1, 2], b: [true, false] }, rule, 't'),
      'PAYLOAD_TOO_LARGE',
      't.b holds more than 1 elements',
      { max_elements: 1 },
    );
    rejects(
      () => validateTensors({ a: [true, 2], b: [true] }, rule, 't'),
      'INVALID_INPUT',
      't.a element 0 is true; a INT32 tensor holds finite numbers',
    );
  });

  it('checks shapes against the spec (-1: any) and the given shape against the data', () => {
    rejects(
      () => validateTensors([1, 2], one, 't'),
      'INVALID_INPUT',
      't has shape [2]; this task\'s tensor "x" needs [-1, 2] (-1: any)',
      { shape: [2], expected: [-1, 2] },
    );
    rejects(
      () => validateTensors([[1, 2, 3]], one, 't'),
      'INVALID_INPUT',
      't has shape [1, 3]; this task\'s tensor "x" needs [-1, 2] (-1: any)',
    );
    rejects(
      () => validateTensors({ data: [1, 2, 3, 4], shape: [4, 1] }, one, 't'),
      'INVALID_INPUT',
      /has shape \[4, 1\]/,
    );
    rejects(
      () => validateTensors({ data: [1, 2, 3], shape: [2, 2] }, one, 't'),
      'INVALID_INPUT',
      't: shape [2, 2] holds 4 elements, data has 3',
    );
    const bad = 't.shape must be a list of at most 8 non-negative integers';
    rejects(() => validateTensors({ data: [1, 2], shape: '2' }, one, 't'), 'INVALID_INPUT', bad);
    rejects(() => validateTensors({ data: [1, 2], shape: [1, -2] }, one, 't'), 'INVALID_INPUT', bad);
    rejects(() => validateTensors({ data: [1, 2], shape: [1, 2.5] }, one, 't'), 'INVALID_INPUT', bad);
    rejects(
      () => validateTensors({ data: [1, 2], shape: [1, 1, 1, 1, 1, 1, 1, 1, 2] }, one, 't'),
      'INVALID_INPUT',
      bad,
    );
    // 8 dimensions is the limit, 0 a valid size.
    const any8 = {
      tensors: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, -1, -1, -1, -1, -1, -1, -1] }],
      maxElements: 10,
    };
    assert.deepEqual(
      validateTensors({ data: [7], shape: [1, 1, 1, 1, 1, 1, 1, 1] }, any8, 't').x!.shape,
      [1, 1, 1, 1, 1, 1, 1, 1],
    );
    assert.deepEqual(validateTensors([[[[[[[[7]]]]]]]], any8, 't').x!.data, [7]);
    const empty = { tensors: [{ name: 'x', datatype: 'FP32' as const, shape: [0] }], maxElements: 10 };
    assert.deepEqual(validateTensors({ data: [], shape: [0] }, empty, 't'), {
      x: { datatype: 'FP32', shape: [0], data: [] },
    });
    rejects(
      () => validateTensors({ datatype: 'INT8', data: [1, 2] }, one, 't'),
      'INVALID_INPUT',
      't.datatype is "INT8"; this task\'s tensor "x" is FP32',
    );
    rejects(
      () => validateTensors({ x: 5 }, one, 't'),
      'INVALID_INPUT',
      't.x must be a tensor {datatype, shape, data} or a (nested) array',
    );
    rejects(
      () => validateTensors({ x: null }, one, 't'),
      'INVALID_INPUT',
      't.x must be a tensor {datatype, shape, data} or a (nested) array',
    );
    rejects(
      () => validateTensors({ x: { shape: [1, 2] } }, one, 't'),
      'INVALID_INPUT',
      't.x must be a tensor {datatype, shape, data} or a (nested) array',
    );
  });

  it('refuses ragged and too-deep nesting, and counts elements against the limit', () => {
    rejects(
      () => validateTensors([[1, 2], [3]], one, 't'),
      'INVALID_INPUT',
      't is ragged: dimension 1 should have 2 elements',
    );
    rejects(
      () => validateTensors([[1, 2], 3], one, 't'),
      'INVALID_INPUT',
      't is ragged: dimension 1 should have 2 elements',
    );
    rejects(
      () =>
        validateTensors(
          [
            [1, 2],
            [3, [4]],
          ],
          one,
          't',
        ),
      'INVALID_INPUT',
      "t is ragged: deeper nesting than its first element's",
    );
    const any = {
      tensors: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, -1, -1, -1, -1, -1, -1, -1, -1] }],
      maxElements: 10,
    };
    rejects(() => validateTensors([[[[[[[[[1]]]]]]]]], any, 't'), 'INVALID_INPUT', 't nests deeper than 8 dimensions');
    const four = { tensors: [x], maxElements: 4 };
    assert.equal(
      validateTensors(
        [
          [1, 2],
          [3, 4],
        ],
        four,
        't',
      ).x!.data.length,
      4,
    );
    rejects(
      () =>
        validateTensors(
          [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
          four,
          't',
        ),
      'PAYLOAD_TOO_LARGE',
      't holds more than 4 elements',
      { max_elements: 4 },
    );
    rejects(
      () => validateTensors({ data: [1, 2, 3, 4, 5, 6], shape: [3, 2] }, four, 't'),
      'PAYLOAD_TOO_LARGE',
      't.data holds more than 4 elements',
    );
  });

  it('checks every element against its datatype and integer range', () => {
    assert.equal(TENSOR_DATATYPES.length, 13);
    const check = (datatype: TensorSpec['datatype'], v: unknown): string | null => {
      try {
        validateTensors([v], { tensors: [{ name: 'x', datatype, shape: [1] }], maxElements: 1 }, 't');
        return null;
      } catch (e) {
        assert.ok(e instanceof IsoError);
        assert.equal(e.code, 'INVALID_INPUT');
        return e.message;
      }
    };
    const ranges: [TensorSpec['datatype'], number, number][] = [
      ['UINT8', 0, 255],
      ['UINT16', 0, 65535],
      ['UINT32', 0, 4294967295],
      ['UINT64', 0, Number.MAX_SAFE_INTEGER],
      ['INT8', -128, 127],
      ['INT16', -32768, 32767],
      ['INT32', -2147483648, 2147483647],
      ['INT64', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ];
    for (const [dt, lo, hi] of ranges) {
      assert.equal(check(dt, lo), null, `${dt} ${lo}`);
      assert.equal(check(dt, hi), null, `${dt} ${hi}`);
      assert.equal(check(dt, lo - 1), `t element 0 is ${lo - 1}; a ${dt} tensor holds integers in [${lo}, ${hi}]`);
      if (hi < Number.MAX_SAFE_INTEGER)
        assert.equal(check(dt, hi + 1), `t element 0 is ${hi + 1}; a ${dt} tensor holds integers in [${lo}, ${hi}]`);
      assert.equal(check(dt, 1.5), `t element 0 is 1.5; a ${dt} tensor holds integers in [${lo}, ${hi}]`);
    }
    assert.equal(
      check('INT64', 2 ** 60),
      `t element 0 is ${2 ** 60}; a INT64 tensor holds integers in [${Number.MIN_SAFE_INTEGER}, ${Number.MAX_SAFE_INTEGER}]`,
    );
    for (const dt of ['FP16', 'FP32', 'FP64'] as const) {
      assert.equal(check(dt, -1.5e300), null);
      assert.equal(check(dt, 0.25), null);
      assert.equal(check(dt, Infinity), `t element 0 is null; a ${dt} tensor holds finite numbers`);
      assert.equal(check(dt, '1'), `t element 0 is "1"; a ${dt} tensor holds finite numbers`);
    }
    assert.equal(check('BOOL', false), null);
    assert.equal(check('BOOL', 0), 't element 0 is 0; a BOOL tensor holds booleans');
    assert.equal(check('BYTES', 'abc'), null);
    assert.equal(check('BYTES', 1), 't element 0 is 1; a BYTES tensor holds strings');
    assert.equal(
      check('INT8', 'x'.repeat(60)),
      `t element 0 is ${JSON.stringify('x'.repeat(60)).slice(0, 40)}; a INT8 tensor holds finite numbers`,
    );
    assert.equal(check('FP32', undefined), 't element 0 is undefined; a FP32 tensor holds finite numbers');
    // The index of the first bad element is named.
    rejects(
      () =>
        validateTensors([1, 2, 'x'], { tensors: [{ name: 'x', datatype: 'FP64', shape: [3] }], maxElements: 9 }, 't'),
      'INVALID_INPUT',
      't element 2 is "x"; a FP64 tensor holds finite numbers',
    );
  });
});

describe('base64', () => {
  it('measures the decoded size before decoding', () => {
    assert.equal(decodedLength(''), 0);
    assert.equal(decodedLength('AAAA'), 3);
    assert.equal(decodedLength('AAAAA'), 3);
    assert.equal(decodedLength('AAAAAA'), 4);
    assert.equal(decodedLength('AAAAAAAA'), 6);
  });

  it('decodes standard and URL-safe base64, ignoring whitespace', () => {
    assert.deepEqual(decodeBase64('AQID', 'f'), Buffer.from([1, 2, 3]));
    assert.deepEqual(decodeBase64('AQ==', 'f'), Buffer.from([1]));
    assert.deepEqual(decodeBase64('AQI=', 'f'), Buffer.from([1, 2]));
    assert.deepEqual(decodeBase64(' AQ\nID\t', 'f'), Buffer.from([1, 2, 3]));
    assert.deepEqual(decodeBase64('+/+/', 'f'), Buffer.from([0xfb, 0xff, 0xbf]));
    assert.deepEqual(decodeBase64('-_-_', 'f'), Buffer.from([0xfb, 0xff, 0xbf]));
    // URL-safe base64 needs no padding.
    assert.deepEqual(decodeBase64('-_8', 'f'), Buffer.from([0xfb, 0xff]));
    assert.deepEqual(decodeBase64('AQ_', 'f'), Buffer.from([1, 15]));
  });

  it('refuses what Buffer.from would silently skip', () => {
    rejects(() => decodeBase64('', 'f'), 'INVALID_INPUT', 'f is empty');
    rejects(() => decodeBase64(' \n ', 'f'), 'INVALID_INPUT', 'f is empty');
    rejects(
      () => decodeBase64('AQI', 'f'),
      'INVALID_INPUT',
      'f is not valid base64: its length (3) is not a multiple of 4',
    );
    rejects(
      () => decodeBase64('AQ=', 'f'),
      'INVALID_INPUT',
      'f is not valid base64: its length (3) is not a multiple of 4',
    );
    rejects(() => decodeBase64('AQ*D', 'f'), 'INVALID_INPUT', 'f is not valid base64: character "*" at position 3');
    rejects(() => decodeBase64('AQ ID!', 'f'), 'INVALID_INPUT', 'f is not valid base64: character "!" at position 5');
    rejects(() => decodeBase64('A=QD', 'f'), 'INVALID_INPUT', 'f is not valid base64: misplaced padding');
    rejects(() => decodeBase64('AQ===', 'f'), 'INVALID_INPUT', 'f is not valid base64: misplaced padding');
    rejects(() => decodeBase64('+_AA', 'f'), 'INVALID_INPUT', 'f is not valid base64: misplaced padding');
    rejects(() => decodeBase64('AQ-=', 'f'), 'INVALID_INPUT', 'f is not valid base64: misplaced padding');
    rejects(
      () => decodeBase64('xAQI', 'f').subarray(0) && decodeBase64('AQIé', 'f'),
      'INVALID_INPUT',
      'f is not valid base64: character "é" at position 4',
    );
  });
});

describe('media sniffing and inspection', () => {
  it('maps media types (with aliases and parameters) to formats', () => {
    const cases: [string, string | null][] = [
      ['image/png', 'png'],
      ['IMAGE/PNG ; q=1', 'png'],
      ['image/jpeg', 'jpeg'],
      ['image/jpg', 'jpeg'],
      ['image/pjpeg', 'jpeg'],
      ['image/gif', 'gif'],
      ['image/bmp', 'bmp'],
      ['image/x-ms-bmp', 'bmp'],
      ['image/webp', 'webp'],
      ['audio/wav', 'wav'],
      ['audio/wave', 'wav'],
      ['audio/x-wav', 'wav'],
      ['audio/vnd.wave', 'wav'],
      ['audio/flac', 'flac'],
      ['audio/x-flac', 'flac'],
      ['audio/ogg', 'ogg'],
      ['application/ogg', 'ogg'],
      ['audio/mpeg', 'mp3'],
      ['audio/mp3', 'mp3'],
      [' audio/mp3', 'mp3'],
      ['text/plain', null],
      ['png', null],
    ];
    for (const [t, f] of cases) assert.equal(formatFromMediaType(t), f, t);
    assert.deepEqual(MEDIA_TYPES, {
      png: 'image/png',
      jpeg: 'image/jpeg',
      gif: 'image/gif',
      bmp: 'image/bmp',
      webp: 'image/webp',
      wav: 'audio/wav',
      flac: 'audio/flac',
      ogg: 'audio/ogg',
      mp3: 'audio/mpeg',
    });
  });

  it('sniffs each format from its first bytes, and only from enough of them', () => {
    const png = makePng(2, 3);
    assert.equal(sniffFormat(png), 'png');
    assert.equal(sniffFormat(png.subarray(0, 8)), 'png');
    assert.equal(sniffFormat(png.subarray(0, 7)), null);
    assert.equal(sniffFormat(Buffer.from([0xff, 0xd8, 0xff])), 'jpeg');
    assert.equal(sniffFormat(Buffer.from([0xff, 0xd8])), null);
    assert.equal(sniffFormat(Buffer.from([0xff, 0xd8, 0xfe])), null);
    assert.equal(sniffFormat(Buffer.from([0xfe, 0xd8, 0xff])), null);
    assert.equal(sniffFormat(Buffer.from('GIF87a', 'latin1')), 'gif');
    assert.equal(sniffFormat(Buffer.from('GIF89a', 'latin1')), 'gif');
    assert.equal(sniffFormat(Buffer.from('GIF88a', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('GIF89', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('BM', 'latin1')), 'bmp');
    assert.equal(sniffFormat(Buffer.from('B', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('BN', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('CM', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0WEBP', 'latin1')), 'webp');
    assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0WAVE', 'latin1')), 'wav');
    assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0AVI ', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('RIFF\0\0\0\0WAV', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('RIFX\0\0\0\0WAVE', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('fLaC', 'latin1')), 'flac');
    assert.equal(sniffFormat(Buffer.from('fLa', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('OggS', 'latin1')), 'ogg');
    assert.equal(sniffFormat(Buffer.from('Ogg', 'latin1')), null);
    assert.equal(sniffFormat(Buffer.from('ID3', 'latin1')), 'mp3');
    assert.equal(sniffFormat(Buffer.from('ID', 'latin1')), null);
    // MPEG frame sync: 11 set bits, and a layer that is not "reserved" (00).
    assert.equal(sniffFormat(Buffer.from([0xff, 0xfb])), 'mp3');
    assert.equal(sniffFormat(Buffer.from([0xff, 0xe2])), 'mp3');
    assert.equal(sniffFormat(Buffer.from([0xff, 0xe4])), 'mp3');
    assert.equal(sniffFormat(Buffer.from([0xff, 0xf9])), null);
    assert.equal(sniffFormat(Buffer.from([0xff, 0xc2])), null);
    assert.equal(sniffFormat(Buffer.from([0xfe, 0xfb])), null);
    assert.equal(sniffFormat(Buffer.from([0xff])), null);
    assert.equal(sniffFormat(Buffer.alloc(0)), null);
    assert.equal(sniffFormat(Buffer.from('hello world!', 'latin1')), null);
  });

  it('PNG: size from IHDR; refuses truncation, a bad first chunk and zero sizes', () => {
    const png = makePng(7, 5);
    assert.deepEqual(inspectImage(png), { format: 'png', width: 7, height: 5 });
    // Bytes after IEND are ignored.
    assert.deepEqual(inspectImage(Buffer.concat([png, Buffer.from('junk')])), { format: 'png', width: 7, height: 5 });
    assert.equal(
      mediaError(() => inspectImage(png.subarray(0, png.length - 1))),
      `truncated PNG (chunk IEND is cut off): ${png.length - 1} bytes, needs at least ${png.length}`,
    );
    assert.equal(
      mediaError(() => inspectImage(png.subarray(0, png.length - 12))),
      `truncated PNG (a chunk header is cut off): ${png.length - 12} bytes, needs at least ${png.length - 4}`,
    );
    assert.equal(
      mediaError(() => inspectImage(png.subarray(0, 8))),
      'truncated PNG (a chunk header is cut off): 8 bytes, needs at least 16',
    );
    assert.equal(
      mediaError(() => inspectImage(png.subarray(0, 30))),
      'truncated PNG (chunk IHDR is cut off): 30 bytes, needs at least 33',
    );
    // A chunk whose length has the top bit set.
    const huge = Buffer.from(png);
    huge.writeUInt32BE(0x80000000, 33);
    assert.equal(
      mediaError(() => inspectImage(huge)),
      'malformed PNG: chunk length out of range',
    );
    const maxLen = Buffer.from(png);
    maxLen.writeUInt32BE(0x7fffffff, 33);
    assert.match(
      mediaError(() => inspectImage(maxLen)),
      /^truncated PNG \(chunk IDAT is cut off\)/,
    );
    const notIhdr = Buffer.from(png);
    notIhdr.write('IHDX', 12, 'latin1');
    assert.equal(
      mediaError(() => inspectImage(notIhdr)),
      'malformed PNG: the first chunk must be a 13-byte IHDR',
    );
    // An IHDR of 14 bytes (the rest shifted) is refused too.
    const ihdr14 = Buffer.concat([
      png.subarray(0, 8),
      Buffer.from([0, 0, 0, 14]),
      Buffer.from('IHDR', 'latin1'),
      Buffer.alloc(18),
      png.subarray(33),
    ]);
    assert.equal(
      mediaError(() => inspectImage(ihdr14)),
      'malformed PNG: the first chunk must be a 13-byte IHDR',
    );
    const zeroW = Buffer.from(png);
    zeroW.writeUInt32BE(0, 16);
    assert.equal(
      mediaError(() => inspectImage(zeroW)),
      'malformed PNG: zero width or height',
    );
    const zeroH = Buffer.from(png);
    zeroH.writeUInt32BE(0, 20);
    assert.equal(
      mediaError(() => inspectImage(zeroH)),
      'malformed PNG: zero width or height',
    );
    // Only the first chunk is read as IHDR: a second IHDR does not change the size.
    const ihdr = png.subarray(8, 33);
    const second = Buffer.from(ihdr);
    second.writeUInt32BE(99, 8);
    const twice = Buffer.concat([png.subarray(0, 33), second, png.subarray(33)]);
    assert.deepEqual(inspectImage(twice), { format: 'png', width: 7, height: 5 });
  });

  it('JPEG: size from the frame header; refuses a missing EOI, a cut segment and no frame', () => {
    assert.deepEqual(inspectImage(makeJpeg(640, 480)), { format: 'jpeg', width: 640, height: 480 });
    assert.deepEqual(inspectImage(makeJpeg(3, 2, { pad: 5 })), { format: 'jpeg', width: 3, height: 2 });
    assert.deepEqual(inspectImage(makeJpeg(3, 2, { fill: true, rst: true })), { format: 'jpeg', width: 3, height: 2 });
    // RST7 (0xd7), the last restart marker, has no length either.
    const rst7 = makeJpeg(3, 2, { rst: true });
    assert.equal(rst7[21], 0xd0);
    rst7[21] = 0xd7;
    assert.deepEqual(inspectImage(rst7), { format: 'jpeg', width: 3, height: 2 });
    // Progressive (SOF2) and the last SOF (cf) carry the size; DHT (c4), JPG (c8) and DAC (cc) do not.
    assert.deepEqual(inspectImage(makeJpeg(9, 8, { sof: 0xc2 })), { format: 'jpeg', width: 9, height: 8 });
    assert.deepEqual(inspectImage(makeJpeg(9, 8, { sof: 0xcf })), { format: 'jpeg', width: 9, height: 8 });
    for (const notSof of [0xc4, 0xc8, 0xcc, 0xbf, 0xd8 - 8 + 0x10]) {
      assert.equal(
        mediaError(() => inspectImage(makeJpeg(9, 8, { sof: notSof }))),
        'malformed JPEG: no frame header with a size',
        notSof.toString(16),
      );
    }
    assert.equal(
      mediaError(() => inspectImage(makeJpeg(9, 8, { eoi: false }))),
      'truncated JPEG: no end-of-image marker',
    );
    assert.equal(
      mediaError(() => inspectImage(makeJpeg(0, 8))),
      'malformed JPEG: no frame header with a size',
    );
    assert.equal(
      mediaError(() => inspectImage(makeJpeg(8, 0))),
      'malformed JPEG: no frame header with a size',
    );
    // SOI then EOI: no frame.
    assert.equal(
      mediaError(() => inspectImage(Buffer.from([0xff, 0xd8, 0xff, 0xd9]))),
      'malformed JPEG: no frame header with a size',
    );
    // SOI then a segment cut off.
    const whole = makeJpeg(9, 8);
    assert.equal(
      mediaError(() => inspectImage(whole.subarray(0, 10))),
      'truncated JPEG (a segment is cut off): 10 bytes, needs at least 20',
    );
    assert.equal(
      mediaError(() => inspectImage(whole.subarray(0, 5))),
      'truncated JPEG (a segment header is cut off): 5 bytes, needs at least 6',
    );
    assert.equal(
      mediaError(() => inspectImage(Buffer.from([0xff, 0xd8, 0xff]))),
      'truncated JPEG (a segment header is cut off): 3 bytes, needs at least 6',
    );
    // Garbage where a marker belongs.
    const garbage = Buffer.concat([whole.subarray(0, 20), Buffer.from([0x00, 0x00]), whole.subarray(20)]);
    assert.equal(
      mediaError(() => inspectImage(garbage)),
      'malformed JPEG: no marker at byte 20',
    );
    // EOI right after the frame, before any scan: sized and ended.
    const noScan = Buffer.concat([whole.subarray(0, 2 + 18 + 19), Buffer.from([0xff, 0xd9])]);
    assert.deepEqual(inspectImage(noScan), { format: 'jpeg', width: 9, height: 8 });
    // Padding is only trimmed from the end: an EOI followed by other bytes is not an end.
    assert.equal(
      mediaError(() => inspectImage(Buffer.concat([whole, Buffer.from([0x01])]))),
      'truncated JPEG: no end-of-image marker',
    );
    assert.equal(
      mediaError(() => inspectImage(Buffer.concat([whole.subarray(0, whole.length - 1), Buffer.from([0xd8])]))),
      'truncated JPEG: no end-of-image marker',
    );
  });

  it('GIF, BMP and WebP: sizes from their headers, truncation and zero sizes refused', () => {
    assert.deepEqual(inspectImage(makeGif(300, 2)), { format: 'gif', width: 300, height: 2 });
    assert.equal(
      mediaError(() => inspectImage(makeGif(3, 2).subarray(0, 12))),
      'truncated GIF: 12 bytes, needs at least 13',
    );
    assert.deepEqual(inspectImage(makeGif(3, 2).subarray(0, 13).fill(0x3b, 12)), {
      format: 'gif',
      width: 3,
      height: 2,
    });
    assert.equal(
      mediaError(() => inspectImage(makeGif(3, 2, false))),
      'truncated GIF: no trailer',
    );
    assert.equal(
      mediaError(() => inspectImage(makeGif(0, 2))),
      'malformed GIF: zero width or height',
    );
    assert.equal(
      mediaError(() => inspectImage(makeGif(3, 0))),
      'malformed GIF: zero width or height',
    );

    assert.deepEqual(inspectImage(makeBmp(4, -3)), { format: 'bmp', width: 4, height: 3 });
    assert.deepEqual(inspectImage(makeBmp(-4, 70000)), { format: 'bmp', width: 4, height: 70000 });
    assert.equal(
      mediaError(() => inspectImage(makeBmp(4, 3).subarray(0, 25))),
      'truncated BMP: 25 bytes, needs at least 26',
    );
    assert.equal(
      mediaError(() => inspectImage(makeBmp(4, 3, { size: 63 }))),
      'truncated BMP: header says 63 bytes, got 62',
    );
    assert.deepEqual(inspectImage(makeBmp(4, 3, { size: 62, offset: 61 })), { format: 'bmp', width: 4, height: 3 });
    assert.equal(
      mediaError(() => inspectImage(makeBmp(4, 3, { offset: 62 }))),
      'malformed BMP: pixel data offset past the end',
    );
    assert.equal(
      mediaError(() => inspectImage(makeBmp(0, 3))),
      'malformed BMP: zero width or height',
    );
    assert.equal(
      mediaError(() => inspectImage(makeBmp(4, 0))),
      'malformed BMP: zero width or height',
    );

    const vp8 = webp('VP8 ', (b) => {
      b.writeUInt16LE(0xc000 | 320, 26);
      b.writeUInt16LE(0x4000 | 200, 28);
    });
    assert.deepEqual(inspectImage(vp8), { format: 'webp', width: 320, height: 200 });
    const vp8l = webp('VP8L', (b) => b.writeUInt32LE((99 | (49 << 14) | (3 << 28)) >>> 0, 21));
    assert.deepEqual(inspectImage(vp8l), { format: 'webp', width: 100, height: 50 });
    const vp8x = webp('VP8X', (b) => {
      b.writeUIntLE(0x12345, 24, 3);
      b.writeUIntLE(0x0ffff, 27, 3);
    });
    assert.deepEqual(inspectImage(vp8x), { format: 'webp', width: 0x12346, height: 0x10000 });
    assert.equal(
      mediaError(() => inspectImage(webp('VP9 ', () => {}))),
      'malformed WebP: unknown chunk "VP9 "',
    );
    assert.equal(
      mediaError(() => inspectImage(webp('VP8 ', (b) => b.writeUInt16LE(0xc000, 26)))),
      'malformed WebP: zero width or height',
    );
    assert.equal(
      mediaError(() => inspectImage(webp('VP8 ', (b) => b.writeUInt16LE(5, 26)))),
      'malformed WebP: zero width or height',
    );
    assert.equal(
      mediaError(() =>
        inspectImage(
          webp('VP8 ', (b) => {
            b.writeUInt16LE(0xc000, 26);
            b.writeUInt16LE(5, 28);
          }),
        ),
      ),
      'malformed WebP: zero width or height',
    );
    assert.equal(
      mediaError(() => inspectImage(riff('WEBP', Buffer.from('VP8 ', 'latin1')))),
      'truncated WebP: 16 bytes, needs at least 30',
    );
    assert.equal(
      mediaError(() => inspectImage(riff('WEBP', Buffer.alloc(22), 27))),
      'truncated WebP: RIFF header says 35 bytes, got 34',
    );
    assert.deepEqual(inspectImage(riff('WEBP', vp8.subarray(12), 26)), { format: 'webp', width: 320, height: 200 });
  });

  it('images and audio refuse each other and unknown bytes', () => {
    assert.equal(
      mediaError(() => inspectImage(makeWav(0.01))),
      'the bytes are wav audio, not an image',
    );
    assert.equal(
      mediaError(() => inspectImage(Buffer.from('hello'))),
      'the bytes are not a PNG, JPEG, GIF, BMP or WebP image',
    );
    assert.equal(
      mediaError(() => inspectAudio(makePng(1, 1))),
      'the bytes are a png image, not audio',
    );
    assert.equal(
      mediaError(() => inspectAudio(Buffer.from('hello'))),
      'the bytes are not WAV, FLAC, Ogg or MP3 audio',
    );
  });

  it('WAV: rate, channels, bits and duration from fmt and data; broken files refused', () => {
    assert.deepEqual(inspectAudio(makeWav(0.5, 8000)), {
      format: 'wav',
      sample_rate: 8000,
      channels: 1,
      bits_per_sample: 16,
      duration_s: 0.5,
    });
    const stereo = riff(
      'WAVE',
      Buffer.concat([fmtChunk(2, 4000, 8), wavChunk('LIST', Buffer.alloc(3)), wavChunk('data', Buffer.alloc(2000))]),
    );
    assert.deepEqual(inspectAudio(stereo), {
      format: 'wav',
      sample_rate: 4000,
      channels: 2,
      bits_per_sample: 8,
      duration_s: 0.25,
    });
    // A fmt chunk longer than 16 bytes (WAVE_FORMAT_EXTENSIBLE-style) is fine.
    const long = riff('WAVE', Buffer.concat([fmtChunk(1, 1000, 16, 18), wavChunk('data', Buffer.alloc(100))]));
    assert.deepEqual(inspectAudio(long), {
      format: 'wav',
      sample_rate: 1000,
      channels: 1,
      bits_per_sample: 16,
      duration_s: 0.05,
    });
    assert.equal(
      mediaError(() =>
        inspectAudio(riff('WAVE', Buffer.concat([fmtChunk(1, 1000, 16, 15), wavChunk('data', Buffer.alloc(4))]))),
      ),
      'malformed WAV: fmt chunk shorter than 16 bytes',
    );
    assert.equal(
      mediaError(() => inspectAudio(riff('WAVE', wavChunk('fmt ', Buffer.alloc(8), 16)))),
      'truncated WAV (fmt chunk): 28 bytes, needs at least 36',
    );
    for (const [c, r] of [
      [0, 1000],
      [1, 0],
    ]) {
      assert.equal(
        mediaError(() =>
          inspectAudio(riff('WAVE', Buffer.concat([fmtChunk(c!, r!, 16), wavChunk('data', Buffer.alloc(4))]))),
        ),
        'malformed WAV: zero channels, sample rate or block size',
      );
    }
    const zeroChannels = riff('WAVE', Buffer.concat([fmtChunk(0, 1000, 16), wavChunk('data', Buffer.alloc(4))]));
    zeroChannels.writeUInt16LE(2, 32); // a block size, but no channel
    assert.equal(
      mediaError(() => inspectAudio(zeroChannels)),
      'malformed WAV: zero channels, sample rate or block size',
    );
    const zeroAlign = riff('WAVE', Buffer.concat([fmtChunk(1, 1000, 16), wavChunk('data', Buffer.alloc(4))]));
    zeroAlign.writeUInt16LE(0, 32);
    assert.equal(
      mediaError(() => inspectAudio(zeroAlign)),
      'malformed WAV: zero channels, sample rate or block size',
    );
    assert.equal(
      mediaError(() =>
        inspectAudio(riff('WAVE', Buffer.concat([wavChunk('data', Buffer.alloc(4)), fmtChunk(1, 1000, 16)]))),
      ),
      'malformed WAV: data chunk before the fmt chunk',
    );
    const wav = makeWav(0.1, 8000);
    assert.equal(
      mediaError(() => inspectAudio(Buffer.concat([wav.subarray(0, 40), Buffer.alloc(4, 0)]).fill(0, 40))),
      'truncated WAV: RIFF header says 1644 bytes, got 44',
    );
    const cut = Buffer.from(wav.subarray(0, 100));
    cut.writeUInt32LE(92, 4);
    assert.equal(
      mediaError(() => inspectAudio(cut)),
      'truncated WAV: data chunk says 1600 bytes, 56 present',
    );
    // Short by only 8 bytes.
    const short = Buffer.from(wav.subarray(0, wav.length - 8));
    short.writeUInt32LE(short.length - 8, 4);
    assert.equal(
      mediaError(() => inspectAudio(short)),
      'truncated WAV: data chunk says 1600 bytes, 1592 present',
    );
    // A data chunk exactly as long as the bytes left is whole.
    const exact = Buffer.from(wav.subarray(0, 100));
    exact.writeUInt32LE(92, 4);
    exact.writeUInt32LE(56, 40);
    assert.equal(inspectAudio(exact).duration_s, 28 / 8000);
    assert.equal(
      mediaError(() => inspectAudio(riff('WAVE', fmtChunk(1, 1000, 16)))),
      'truncated WAV: no data chunk',
    );
    assert.equal(
      mediaError(() => inspectAudio(riff('WAVE', wavChunk('LIST', Buffer.alloc(4))))),
      'malformed WAV: no fmt chunk',
    );
    assert.equal(
      mediaError(() => inspectAudio(riff('WAVE', Buffer.alloc(0)))),
      'malformed WAV: no fmt chunk',
    );
    assert.equal(
      mediaError(() => inspectAudio(Buffer.from('RIFF\0\0\0\0WAVE', 'latin1').subarray(0, 11))),
      'the bytes are not WAV, FLAC, Ogg or MP3 audio',
    );
    // Odd-sized chunks are padded to an even length before the next chunk.
    const odd = riff(
      'WAVE',
      Buffer.concat([wavChunk('LIST', Buffer.alloc(3)), fmtChunk(1, 1000, 16), wavChunk('data', Buffer.alloc(10))]),
    );
    assert.equal(inspectAudio(odd).duration_s, 0.005);
    // A chunk header of exactly 8 bytes at the end is read (data of length 0).
    const emptyData = riff('WAVE', Buffer.concat([fmtChunk(1, 1000, 16), wavChunk('data', Buffer.alloc(0))]));
    assert.equal(inspectAudio(emptyData).duration_s, 0);
  });

  it('FLAC: STREAMINFO read bit by bit; Ogg and MP3 sniffed with a minimum size', () => {
    assert.deepEqual(inspectAudio(makeFlac(44100, 2, 16, 88200)), {
      format: 'flac',
      sample_rate: 44100,
      channels: 2,
      bits_per_sample: 16,
      duration_s: 2,
    });
    assert.deepEqual(inspectAudio(makeFlac(96000, 8, 24, 2 ** 32 + 96000)), {
      format: 'flac',
      sample_rate: 96000,
      channels: 8,
      bits_per_sample: 24,
      duration_s: (2 ** 32 + 96000) / 96000,
    });
    assert.deepEqual(inspectAudio(makeFlac(8000, 1, 8, 0)), {
      format: 'flac',
      sample_rate: 8000,
      channels: 1,
      bits_per_sample: 8,
      duration_s: undefined,
    });
    // The last-block flag (0x80) may be set; any other block type first is refused.
    assert.equal(inspectAudio(makeFlac(8000, 1, 8, 8000, 0x80)).duration_s, 1);
    assert.equal(
      mediaError(() => inspectAudio(makeFlac(8000, 1, 8, 8000, 0x01))),
      'malformed FLAC: the first metadata block must be STREAMINFO',
    );
    assert.equal(
      mediaError(() => inspectAudio(makeFlac(8000, 1, 8, 8000, 0x84))),
      'malformed FLAC: the first metadata block must be STREAMINFO',
    );
    assert.equal(
      mediaError(() => inspectAudio(makeFlac(0, 1, 8, 8000))),
      'malformed FLAC: zero sample rate',
    );
    assert.equal(
      mediaError(() => inspectAudio(makeFlac(8000, 1, 8, 8000).subarray(0, 41))),
      'truncated FLAC: 41 bytes, needs at least 42',
    );

    const ogg = Buffer.concat([Buffer.from('OggS', 'latin1'), Buffer.alloc(23)]);
    assert.deepEqual(inspectAudio(ogg), { format: 'ogg' });
    assert.equal(
      mediaError(() => inspectAudio(ogg.subarray(0, 26))),
      'truncated Ogg: 26 bytes, needs at least 27',
    );
    assert.deepEqual(inspectAudio(Buffer.from([0xff, 0xfb, 0x90, 0x00])), { format: 'mp3' });
    assert.deepEqual(inspectAudio(Buffer.from('ID3\x04', 'latin1')), { format: 'mp3' });
    assert.equal(
      mediaError(() => inspectAudio(Buffer.from([0xff, 0xfb, 0x90]))),
      'truncated MP3: 3 bytes, needs at least 4',
    );
  });
});

describe('media inputs (validateMedia)', () => {
  const png = makePng(4, 3);
  const b64 = png.toString('base64');

  it('takes base64, a data: URL, {data, format|media_type} and raw bytes, and reports what it found', () => {
    const want = { format: 'png', media_type: 'image/png', bytes: png.length, width: 4, height: 3, data: b64 };
    assert.deepEqual(validateMedia(b64, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia(`data:image/png;base64,${b64}`, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia(`data:;base64,${b64}`, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia(`DATA:image/png;name=a.png;base64,${b64}`, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia({ data: b64, format: 'PNG' }, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia({ data: b64, media_type: 'image/png', format: 'jpeg' }, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia({ data: `data:image/png;base64,${b64}` }, imageRule(), 'img'), want);
    assert.deepEqual(validateMedia(new RawMedia(png, 'image/png'), imageRule(), 'img'), want);
    assert.deepEqual(validateMedia(new RawMedia(png), imageRule(), 'img'), want);
    const wav = makeWav(0.25, 8000);
    assert.deepEqual(validateMedia(new RawMedia(wav, 'audio/x-wav'), audioRule(), 'a'), {
      format: 'wav',
      media_type: 'audio/wav',
      bytes: wav.length,
      sample_rate: 8000,
      channels: 1,
      bits_per_sample: 16,
      duration_s: 0.25,
      data: wav.toString('base64'),
    });
  });

  it('refuses other shapes, a data: URL without base64, and unknown claimed types', () => {
    rejects(
      () => validateMedia(5, imageRule(), 'img'),
      'INVALID_INPUT',
      'img must be an image as base64 text, a data: URL, or {data, format?}',
    );
    rejects(
      () => validateMedia([b64], audioRule(), 'a'),
      'INVALID_INPUT',
      'a must be audio as base64 text, a data: URL, or {data, format?}',
    );
    rejects(() => validateMedia(null, imageRule(), 'img'), 'INVALID_INPUT', /^img must be an image/);
    rejects(() => validateMedia({ data: 5 }, imageRule(), 'img'), 'INVALID_INPUT', /^img must be an image/);
    rejects(
      () => validateMedia(`data:image/png,${b64}`, imageRule(), 'img'),
      'INVALID_INPUT',
      'img is a data: URL without ;base64',
    );
    rejects(
      () => validateMedia({ data: b64, format: 'tiff' }, imageRule(), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      'img: "tiff" is not a media type this task takes (png, jpeg, gif, bmp, webp)',
    );
    rejects(
      () => validateMedia({ data: b64, media_type: 'x'.repeat(80) }, imageRule({ formats: ['png'] }), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      `img: "${'x'.repeat(60)}" is not a media type this task takes (png)`,
    );
    rejects(
      () => validateMedia(`data:text/plain;base64,${b64}`, imageRule(), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      'img: "text/plain" is not a media type this task takes (png, jpeg, gif, bmp, webp)',
    );
    rejects(
      () => validateMedia('AQ*D', imageRule(), 'img'),
      'INVALID_INPUT',
      'img is not valid base64: character "*" at position 3',
    );
    // A data: URL further than 200 characters in is not one.
    rejects(
      () => validateMedia(`${' '.repeat(200)}data:image/png;base64,${b64}`, imageRule(), 'img'),
      'INVALID_INPUT',
      /^img is not valid base64: character ":"/,
    );
  });

  it('checks the claimed type against the bytes, and the format against the task', () => {
    const jpeg = makeJpeg(2, 2);
    rejects(
      () => validateMedia({ data: jpeg.toString('base64'), format: 'png' }, imageRule(), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      'img is sent as image/png, but the bytes are jpeg',
      { claimed: 'image/png', detected: 'jpeg' },
    );
    rejects(
      () => validateMedia(new RawMedia(jpeg, 'image/png'), imageRule(), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      'img is sent as image/png, but the bytes are jpeg',
    );
    rejects(
      () => validateMedia(`data:image/gif;base64,${b64}`, imageRule(), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      'img is sent as image/gif, but the bytes are png',
    );
    // A raw body's unknown content type is not a claim.
    assert.equal(validateMedia(new RawMedia(png, 'application/octet-stream'), imageRule(), 'img').format, 'png');
    rejects(
      () => validateMedia(jpeg.toString('base64'), imageRule({ formats: ['png'] }), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      'img is jpeg; this task takes png',
      { detected: 'jpeg', accepted: ['png'] },
    );
    rejects(
      () => validateMedia(b64, audioRule(), 'a'),
      'UNSUPPORTED_MEDIA_TYPE',
      'a: the bytes are a png image, not audio',
      { accepted: ['wav', 'flac', 'ogg', 'mp3'] },
    );
    rejects(
      () => validateMedia(png.subarray(0, 40).toString('base64'), imageRule(), 'img'),
      'UNSUPPORTED_MEDIA_TYPE',
      /^img: truncated PNG/,
    );
  });

  it('bounds bytes before and after decoding, pixels and seconds', () => {
    rejects(
      () => validateMedia(new RawMedia(png), imageRule({ maxBytes: png.length - 1 }), 'img'),
      'PAYLOAD_TOO_LARGE',
      `img is ${png.length} bytes; the limit is ${png.length - 1}`,
      { bytes: png.length, max_bytes: png.length - 1 },
    );
    assert.equal(validateMedia(new RawMedia(png), imageRule({ maxBytes: png.length }), 'img').bytes, png.length);
    assert.equal(validateMedia(b64, imageRule({ maxBytes: png.length }), 'img').bytes, png.length);
    rejects(
      () => validateMedia(b64, imageRule({ maxBytes: png.length - 1 }), 'img'),
      'PAYLOAD_TOO_LARGE',
      `img is ${png.length} bytes; the limit is ${png.length - 1}`,
    );
    // Far over the limit: refused from the text's length, before decoding (the reported size is the estimate).
    const big = Buffer.concat([png, Buffer.alloc(3000)]).toString('base64');
    rejects(
      () => validateMedia(big, imageRule({ maxBytes: 100 }), 'img'),
      'PAYLOAD_TOO_LARGE',
      `img is ${Math.floor((big.length * 3) / 4)} bytes; the limit is 100`,
    );
    // Whitespace does not count towards the estimate.
    const spaced = b64.replace(/(.{4})/g, '$1\n');
    assert.equal(validateMedia(spaced, imageRule({ maxBytes: png.length }), 'img').bytes, png.length);
    // 4 × 3 = 12 pixels.
    assert.equal((validateMedia(b64, imageRule({ maxPixels: 12 }), 'img') as { width: number }).width, 4);
    rejects(
      () => validateMedia(b64, imageRule({ maxPixels: 11 }), 'img'),
      'PAYLOAD_TOO_LARGE',
      'img is 4×3 pixels; the limit is 11 pixels',
      { width: 4, height: 3, max_pixels: 11 },
    );
    const wav = makeWav(0.5, 8000);
    assert.equal(
      (validateMedia(new RawMedia(wav), audioRule({ maxSeconds: 0.5 }), 'a') as { duration_s: number }).duration_s,
      0.5,
    );
    rejects(
      () => validateMedia(new RawMedia(wav), audioRule({ maxSeconds: 0.25 }), 'a'),
      'PAYLOAD_TOO_LARGE',
      'a lasts 0.5 s; the limit is 0.25 s',
      { duration_s: 0.5, max_seconds: 0.25 },
    );
    // No duration in the container (Ogg): no limit to apply.
    const ogg = Buffer.concat([Buffer.from('OggS', 'latin1'), Buffer.alloc(23)]);
    assert.deepEqual(validateMedia(new RawMedia(ogg), audioRule({ maxSeconds: 0.001 }), 'a'), {
      format: 'ogg',
      media_type: 'audio/ogg',
      bytes: 27,
      data: ogg.toString('base64'),
    });
  });

  it('passes on errors that are not about the media', () => {
    // A RawMedia whose bytes are not a Buffer makes the inspector throw a TypeError, which is not turned into a 415.
    assert.throws(
      () => validateMedia(new RawMedia({ length: 20 } as unknown as Buffer), imageRule(), 'img'),
      (e: unknown) => e instanceof TypeError,
    );
  });
});

describe('validateInput (one entry point for every input type)', () => {
  const task = (t: Record<string, unknown>) => taskSchema.parse({ name: 't', ...t });

  it('routes each input type and weighs it for batching', () => {
    assert.deepEqual(validateInput(task({ input_type: 'sequence', sequence_types: ['DNA'] }), 'acgt', 'x'), {
      payload: { sequence: 'ACGT' },
      sequenceType: 'DNA',
      size: 4,
    });
    assert.deepEqual(validateInput(task({ input_type: 'text' }), 'a😀b', 'x'), { payload: { input: 'a😀b' }, size: 3 });
    rejects(
      () => validateInput(task({ input_type: 'text', max_length: 2 }), 'abc', 'x'),
      'INPUT_TOO_LONG',
      'x has 3 characters; the limit is 2',
    );
    rejects(
      () => validateInput(task({ input_type: 'text', min_length: 2 }), 'a', 'x'),
      'INVALID_INPUT',
      'x has 1 characters; this task needs at least 2',
    );
    const json = task({ input_type: 'json', schema: { type: 'array' }, max_bytes: 5 });
    assert.deepEqual(validateInput(json, [1, 2], 'x'), { payload: { input: [1, 2] }, size: 1 });
    rejects(() => validateInput(json, [1, 2, 3], 'x'), 'PAYLOAD_TOO_LARGE', 'x is 7 bytes of JSON; the limit is 5');
    const tensor = task({
      input_type: 'tensor',
      tensors: [
        { name: 'a', datatype: 'FP32', shape: [-1] },
        { name: 'b', datatype: 'FP32', shape: [-1] },
      ],
      max_elements: 5,
    });
    assert.deepEqual(validateInput(tensor, { a: [1, 2], b: [3, 4, 5] }, 'x'), {
      payload: {
        input: {
          a: { datatype: 'FP32', shape: [2], data: [1, 2] },
          b: { datatype: 'FP32', shape: [3], data: [3, 4, 5] },
        },
      },
      size: 5,
    });
    rejects(
      () => validateInput(tensor, { a: [1, 2], b: [3, 4, 5, 6] }, 'x'),
      'PAYLOAD_TOO_LARGE',
      'x.b holds more than 3 elements',
    );
    const chat = task({ input_type: 'chat', max_messages: 2, max_length: 5 });
    assert.deepEqual(
      validateInput(
        chat,
        [
          { role: 'user', content: 'ab' },
          { role: 'assistant', content: '😀' },
        ],
        'x',
      ),
      {
        payload: {
          input: {
            messages: [
              { role: 'user', content: 'ab' },
              { role: 'assistant', content: '😀' },
            ],
          },
        },
        size: 3,
      },
    );
    rejects(
      () =>
        validateInput(
          chat,
          [
            { role: 'user', content: 'a' },
            { role: 'user', content: 'a' },
            { role: 'user', content: 'a' },
          ],
          'x',
        ),
      'INPUT_TOO_LONG',
      'x holds 3 messages; the limit is 2',
    );
    rejects(
      () => validateInput(chat, [{ role: 'user', content: 'abcdef' }], 'x'),
      'INPUT_TOO_LONG',
      'x has more than 5 characters of content',
    );
  });

  it("image and audio: the task's formats and limits, and a size in KiB (at least 1)", () => {
    const png = makePng(4, 3);
    const image = task({ input_type: 'image' });
    const v = validateInput(image, png.toString('base64'), 'x');
    assert.equal(v.size, 1);
    assert.deepEqual(v.payload, {
      input: {
        format: 'png',
        media_type: 'image/png',
        bytes: png.length,
        width: 4,
        height: 3,
        data: png.toString('base64'),
      },
    });
    // Default formats: png and jpeg only.
    rejects(
      () => validateInput(image, makeGif(2, 2).toString('base64'), 'x'),
      'UNSUPPORTED_MEDIA_TYPE',
      'x is gif; this task takes png, jpeg',
    );
    rejects(
      () => validateInput(task({ input_type: 'image', max_bytes: 10 }), new RawMedia(png), 'x'),
      'PAYLOAD_TOO_LARGE',
      `x is ${png.length} bytes; the limit is 10`,
    );
    rejects(
      () => validateInput(task({ input_type: 'image', max_pixels: 11 }), new RawMedia(png), 'x'),
      'PAYLOAD_TOO_LARGE',
      'x is 4×3 pixels; the limit is 11 pixels',
    );
    const wav = makeWav(0.5, 8000); // 8044 bytes: 8 KiB rounded up to 8.
    const audio = task({ input_type: 'audio' });
    assert.equal(validateInput(audio, new RawMedia(wav), 'x').size, Math.ceil(wav.length / 1024));
    assert.equal(Math.ceil(wav.length / 1024), 8);
    rejects(
      () => validateInput(task({ input_type: 'audio', max_seconds: 0.4 }), new RawMedia(wav), 'x'),
      'PAYLOAD_TOO_LARGE',
      'x lasts 0.5 s; the limit is 0.4 s',
    );
    rejects(
      () => validateInput(audio, new RawMedia(makeFlac(8000, 1, 8, 8000)), 'x'),
      'UNSUPPORTED_MEDIA_TYPE',
      'x is flac; this task takes wav',
    );
    assert.equal(
      validateInput(task({ input_type: 'audio', formats: ['flac'] }), new RawMedia(makeFlac(8000, 1, 8, 8000)), 'x')
        .size,
      1,
    );
  });

  it('helpers: raw media, string-taking types, and the unsupported-surface error', () => {
    assert.equal(isRawMedia(new RawMedia(Buffer.alloc(1))), true);
    assert.equal(isRawMedia(Buffer.alloc(1)), false);
    assert.equal(isRawMedia({ bytes: Buffer.alloc(1) }), false);
    assert.deepEqual((['sequence', 'text', 'json', 'tensor', 'image', 'audio', 'chat'] as const).filter(takesStrings), [
      'sequence',
      'text',
      'image',
      'audio',
    ]);
    const e = unsupportedOn('OpenAI chat', task({ input_type: 'image' }), ['chat', 'text']);
    assert.equal(e.code, 'INVALID_REQUEST');
    assert.equal(e.message, 'OpenAI chat takes chat or text input; task t takes image');
    assert.deepEqual(e.details, { input_type: 'image', accepted: ['chat', 'text'] });
  });
});
