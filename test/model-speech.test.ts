// The speech model (PocketSphinx) through a real gateway, on WAVs this test synthesises with
// espeak-ng: spoken commands come back as the exact phrase when the request lists the phrases;
// the same speech as stereo 44.1 kHz, 24-bit and float WAVs reads the same; open-vocabulary
// decoding gives timed words; bad phrases, wrong files and over-long audio get clear errors; a
// missing acoustic model fails the load with the apt packages named. Needs Debian espeak-ng,
// python3-pocketsphinx, pocketsphinx-en-us, python3-numpy (.ci/run installs them; on CI a missing
// one fails instead of skipping).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startGateway, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

const PYTHON = '/usr/bin/python3';
const COMMANDS = [
  'turn on the light',
  'turn off the light',
  'open the door',
  'close the door',
  'what time is it',
  'play some music',
  'stop the music',
  'call my mother',
  'yes please',
  'no thanks',
];

function missing(): string | null {
  const e = spawnSync('espeak-ng', ['--version'], { encoding: 'utf8' });
  if (e.error || e.status !== 0) return 'espeak-ng is not installed (apt-get install espeak-ng)';
  const p = spawnSync(
    PYTHON,
    [
      '-c',
      'import pocketsphinx, numpy, os; assert os.path.exists(os.path.join(pocketsphinx.get_model_path(), "en-us.lm.bin"))',
    ],
    { encoding: 'utf8' },
  );
  if (p.error || p.status !== 0)
    return `${PYTHON} has no pocketsphinx with its US English model (apt-get install python3-pocketsphinx pocketsphinx-en-us python3-numpy)`;
  return null;
}

interface SpeechOut {
  prediction: string;
  text: string;
  words?: { word: string; start_s: number; end_s: number }[];
  details: {
    mode: string;
    audio: { sample_rate: number; channels: number; bits: number; encoding: string; duration_s: number };
  };
}
type Reply = { data: SpeechOut & { input_type: string }; error?: { code: string }; message: string };

/** A 16-bit mono WAV's samples (espeak-ng writes a 44-byte header). */
function samplesOf(wav: Buffer): { rate: number; samples: Int16Array } {
  assert.equal(wav.toString('latin1', 36, 40), 'data');
  const pcm = wav.subarray(44, 44 + wav.readUInt32LE(40));
  return {
    rate: wav.readUInt32LE(24),
    samples: new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + (pcm.length & ~1))),
  };
}

/** A WAV with `channels` copies of each sample in the given encoding (1 = PCM, 3 = float). */
function wavOf(rate: number, samples: ArrayLike<number>, channels: number, format: 1 | 3, bits: 16 | 24 | 32): Buffer {
  const width = bits / 8;
  const data = Buffer.alloc(samples.length * channels * width);
  for (let i = 0; i < samples.length; i++) {
    for (let c = 0; c < channels; c++) {
      const at = (i * channels + c) * width;
      const v = samples[i]! / 32768;
      if (format === 3) data.writeFloatLE(v, at);
      else if (bits === 24) data.writeIntLE(Math.round(v * 8388607), at, 3);
      else data.writeInt16LE(samples[i]!, at);
    }
  }
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(format, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels * width, 28);
  h.writeUInt16LE(channels * width, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

const skip = missing();
if (skip && process.env.CI) throw new Error(skip);

describe('speech model (PocketSphinx, audio)', { skip: skip ?? false }, () => {
  let h: Harness;
  let dir: string;
  const say = async (text: string, voice = 'en-us', speed = 150): Promise<Buffer> => {
    const file = join(dir, `${text.replace(/\W+/g, '_')}-${voice}-${speed}.wav`);
    await promisify(execFile)('espeak-ng', ['-v', voice, '-s', String(speed), '-w', file, text], { timeout: 60_000 });
    return readFileSync(file);
  };
  const hear = (wav: Buffer, options: Record<string, unknown> = {}) =>
    h.post<Reply>('/models/speech/predict', { input: wav.toString('base64'), options });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'isomodel-speech-'));
    h = await startGateway(['speech']);
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('spoken commands come back as the exact phrase when the phrases are listed', async () => {
    let right = 0;
    for (const [i, command] of COMMANDS.entries()) {
      const r = await hear(await say(command, i % 2 ? 'en-us+f2' : 'en-us'), {
        phrases: COMMANDS.map((c) => c.toUpperCase() + '!'),
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.details.mode, 'phrases');
      assert.ok(COMMANDS.includes(r.body.data.text), `the answer is one of the phrases: ${r.body.data.text}`);
      if (r.body.data.text === command) right++;
      assert.equal(r.body.data.words!.map((w) => w.word).join(' '), r.body.data.text);
    }
    assert.ok(right >= 9, `${right} of ${COMMANDS.length} commands read exactly`);
  });

  it('the same speech as stereo 44.1 kHz 16-bit, 24-bit and float WAVs reads the same', async () => {
    const { rate, samples } = samplesOf(await say('open the door'));
    assert.equal(rate, 22050);
    const doubled = Int16Array.from({ length: samples.length * 2 }, (_, i) => samples[i >> 1]!); // 44.1 kHz
    const variants: [Buffer, Partial<SpeechOut['details']['audio']>][] = [
      [wavOf(44100, doubled, 2, 1, 16), { sample_rate: 44100, channels: 2, bits: 16, encoding: 's16' }],
      [wavOf(rate, samples, 1, 1, 24), { sample_rate: 22050, channels: 1, bits: 24, encoding: 's24' }],
      [wavOf(rate, samples, 1, 3, 32), { sample_rate: 22050, channels: 1, bits: 32, encoding: 'f32' }],
    ];
    for (const [wav, audio] of variants) {
      const r = await hear(wav, { phrases: COMMANDS });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.text, 'open the door');
      for (const [k, v] of Object.entries(audio))
        assert.equal(r.body.data.details.audio[k as keyof SpeechOut['details']['audio']], v);
    }
  });

  it('open vocabulary: timed words inside the recording, silence is empty text', async () => {
    const wav = await say('the weather is nice today');
    const r = await hear(wav);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const out = r.body.data;
    assert.equal(out.input_type, 'audio');
    assert.equal(out.details.mode, 'language_model');
    // Synthetic speech is read poorly without phrases (MODEL_CARD.md); what is checked here is the shape.
    assert.ok(out.words!.length >= 1, JSON.stringify(out));
    let last = 0;
    for (const w of out.words!) {
      assert.ok(
        w.start_s >= last - 1e-9 && w.end_s > w.start_s && w.end_s <= out.details.audio.duration_s + 0.05,
        JSON.stringify(w),
      );
      last = w.end_s;
    }
    assert.equal(out.words!.map((w) => w.word).join(' '), out.text);
    const silence = wavOf(16000, new Int16Array(16000), 1, 1, 16);
    const quiet = await hear(silence, { return_words: false });
    assert.equal(quiet.status, 200, JSON.stringify(quiet.body));
    assert.equal(quiet.body.data.text, '');
    assert.ok(!('words' in quiet.body.data));
  });

  it('bad phrases, a PNG, a broken header and over-long audio get clear errors', async () => {
    const wav = await say('yes please');
    const unknown = await hear(wav, { phrases: ['yes please', 'zorblaxian widget'] });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error!.code, 'INVALID_INPUT');
    assert.match(unknown.body.message, /dictionary does not have: widget|dictionary does not have: zorblaxian/);
    for (const phrases of ['yes', [], [42], ['x'.repeat(101)], Array.from({ length: 101 }, () => 'yes')]) {
      const r = await hear(wav, { phrases });
      assert.equal(r.status, 400, JSON.stringify(phrases).slice(0, 40));
      assert.equal(r.body.error!.code, 'INVALID_INPUT');
    }
    const png = await h.post<Reply>('/models/speech/predict', { input: makePng(4, 4).toString('base64') });
    assert.equal(png.status, 415);
    const adpcm = makeWav(0.5);
    adpcm.writeUInt16LE(2, 20); // format tag 2 (MS ADPCM): not PCM or float
    const compressed = await hear(adpcm);
    assert.equal(compressed.status, 415, JSON.stringify(compressed.body));
    assert.equal(compressed.body.error!.code, 'UNSUPPORTED_MEDIA_TYPE');
    const long = await hear(makeWav(61, 8000));
    assert.equal(long.status, 413);
    assert.equal(long.body.error!.code, 'PAYLOAD_TOO_LARGE');
    // after all that, the worker still answers
    const ok = await hear(wav, { phrases: COMMANDS });
    assert.equal(ok.body.data.text, 'yes please');
  });
});

describe('speech model without its acoustic model', { skip: skip ?? false }, () => {
  it('fails to load with MODEL_NOT_LOADED naming the apt packages', async () => {
    const h = await startGateway(['speech'], {
      model_env: { speech: { POCKETSPHINX_MODEL_DIR: '/nonexistent/pocketsphinx' } },
    });
    try {
      const r = await h.post<Reply>('/models/speech/predict', { input: makeWav(0.5).toString('base64') });
      assert.equal(r.status, 503);
      assert.equal(r.body.error!.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /apt-get install python3-pocketsphinx pocketsphinx-en-us/);
    } finally {
      await h.close();
    }
  });
});
