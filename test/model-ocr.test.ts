// The ocr model (Tesseract) through a real gateway, on text images this test has rendered
// (training/eval_ocr.py --render: fixed lines in DejaVu fonts, PNG and JPEG, dark on light and
// light on dark, blurred and rotated): the text comes back with a low character error rate, the
// word boxes lie inside the image, options are checked, a missing binary fails the load with the
// apt packages named. Needs Debian tesseract-ocr, tesseract-ocr-eng, python3-pil and
// fonts-dejavu-core (.ci/run installs them; on CI a missing one fails instead of skipping).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';
import { makePng } from './media.js';

const PYTHON = '/usr/bin/python3';

function missing(): string | null {
  const pil = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
  if (pil.error || pil.status !== 0) return `${PYTHON} cannot import PIL (apt-get install python3-pil)`;
  const t = spawnSync('tesseract', ['--list-langs'], { encoding: 'utf8' });
  if (t.error || t.status !== 0) return 'tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)';
  if (!t.stdout.split('\n').includes('eng')) return 'tesseract has no English data (apt-get install tesseract-ocr-eng)';
  return null;
}

interface Case {
  file: string;
  format: string;
  condition: string;
  text: string;
}
interface Word {
  text: string;
  confidence: number;
  box: { x: number; y: number; width: number; height: number };
  line: number;
}
interface OcrOut {
  prediction: string;
  text: string;
  words: Word[];
  confidence: number | null;
  details: { psm: number; language: string; engine: string; lines: number; image: { width: number; height: number } };
}

function levenshtein<T>(a: readonly T[], b: readonly T[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
const normalise = (s: string): string => s.split(/\s+/).filter(Boolean).join(' ');
const cer = (ref: string, hyp: string): number =>
  levenshtein([...normalise(ref)], [...normalise(hyp)]) / normalise(ref).length;

const skip = missing();
if (skip && process.env.CI) throw new Error(skip);

describe('ocr model (Tesseract, images)', { skip: skip ?? false }, () => {
  let h: Harness;
  let dir: string;
  let cases: Case[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'isomodel-ocr-'));
    await promisify(execFile)(PYTHON, [join(PACKAGE_ROOT, 'training', 'eval_ocr.py'), '--render', dir], {
      timeout: 120_000,
    });
    cases = (JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as { cases: Case[] }).cases;
    h = await startGateway(['ocr']);
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const read = (c: Case, options: Record<string, unknown> = {}) =>
    h.post<{ data: OcrOut & { input_type: string }; error?: { code: string }; message: string }>(
      '/models/ocr/predict',
      { input: { data: readFileSync(join(dir, c.file)).toString('base64'), format: c.format }, options },
    );

  it('reads rendered text: under 3 % character errors over the legible images, clean text exactly', async () => {
    // The small (8 px) text is below what Tesseract reads; the card reports it apart.
    const legible = cases.filter((c) => c.condition !== 'tiny');
    assert.ok(legible.length >= 20);
    let errors = 0;
    let chars = 0;
    for (const c of legible) {
      const r = await read(c);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const out = r.body.data;
      assert.equal(out.input_type, 'image');
      assert.equal(out.prediction, out.text);
      const e = cer(c.text, out.text);
      if (c.condition === 'clean_sans') assert.equal(normalise(out.text), normalise(c.text), c.file);
      assert.ok(e < 0.1, `${c.file}: character error rate ${e.toFixed(3)}: ${JSON.stringify(out.text)}`);
      errors += e * normalise(c.text).length;
      chars += normalise(c.text).length;
      // words: in reading order they spell the text; boxes inside the image; confidences 0..100
      assert.equal(out.words.map((w) => w.text).join(' '), normalise(out.text));
      for (const w of out.words) {
        assert.ok(
          w.box.x >= 0 &&
            w.box.y >= 0 &&
            w.box.x + w.box.width <= out.details.image.width &&
            w.box.y + w.box.height <= out.details.image.height,
          JSON.stringify(w),
        );
        assert.ok(w.confidence >= 0 && w.confidence <= 100);
      }
      assert.ok(out.confidence! > 0 && out.confidence! <= 1);
      if (c.condition === 'clean_sans') assert.equal(out.details.lines, c.text.split('\n').length);
    }
    assert.ok(errors / chars < 0.03, `character error rate over the legible images ${(errors / chars).toFixed(4)}`);
  });

  it('psm 6 (one block) reads the same text; bad options are 400 INVALID_INPUT naming the choices', async () => {
    const c = cases.find((x) => x.condition === 'clean_sans')!;
    const r = await read(c, { psm: 6 });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.details.psm, 6);
    assert.equal(normalise(r.body.data.text), normalise(c.text));
    const badPsm = await read(c, { psm: 99 });
    assert.equal(badPsm.status, 400);
    assert.equal(badPsm.body.error!.code, 'INVALID_INPUT');
    assert.match(badPsm.body.message, /psm must be one of 3 \(/);
    const badLang = await read(c, { language: 'klingon' });
    assert.equal(badLang.status, 400);
    assert.match(badLang.body.message, /installed languages \(eng/);
    const injected = await read(c, { language: 'eng --tessdata-dir /' });
    assert.equal(injected.status, 400);
  });

  it('a blank page is empty text, not an error; a raw image/jpeg body works; GIF too', async () => {
    const blank = await h.post<{ data: OcrOut }>('/models/ocr/predict', { input: makePng(200, 80).toString('base64') });
    assert.equal(blank.status, 200, JSON.stringify(blank.body));
    assert.equal(blank.body.data.text, '');
    assert.deepEqual(blank.body.data.words, []);
    assert.equal(blank.body.data.confidence, null);
    const jpeg = cases.find((x) => x.format === 'jpeg' && x.condition === 'serif_jpeg')!;
    const res = await fetch(`${h.url}/models/ocr/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: readFileSync(join(dir, jpeg.file)),
    });
    const body = (await res.json()) as { data: OcrOut };
    assert.equal(res.status, 200);
    assert.ok(cer(jpeg.text, body.data.text) < 0.05);
    const gif = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'media', 'red-box.gif'));
    const g = await h.post<{ data: OcrOut }>('/models/ocr/predict', { input: gif.toString('base64') });
    assert.equal(g.status, 200, JSON.stringify(g.body));
    assert.equal(typeof g.body.data.text, 'string');
  });

  it('a batch reads each image on its own', async () => {
    const two = cases.filter((c) => c.condition === 'clean_sans').slice(0, 2);
    const r = await h.post<{ data: { predictions: (OcrOut & { index: number })[] } }>('/models/ocr/predict/batch', {
      inputs: two.map((c) => ({ data: readFileSync(join(dir, c.file)).toString('base64'), format: c.format })),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    two.forEach((c, i) => assert.equal(normalise(r.body.data.predictions[i]!.text), normalise(c.text)));
  });
});

describe('ocr model without tesseract', { skip: skip ?? false }, () => {
  it('fails to load with MODEL_NOT_LOADED naming the apt packages; the gateway keeps serving', async () => {
    const h = await startGateway(['ocr', 'revcomp'], {
      model_env: { ocr: { TESSERACT_BINARY: '/nonexistent/tesseract' } },
    });
    try {
      const r = await h.post<{ error: { code: string }; message: string }>('/models/ocr/predict', {
        input: makePng(10, 10).toString('base64'),
      });
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /apt-get install tesseract-ocr tesseract-ocr-eng/);
      const ok = await h.post<{ data: { prediction: string } }>('/models/revcomp/predict', { sequence: 'AACG' });
      assert.equal(ok.status, 200);
      const ready = await h.get('/health/ready');
      assert.equal(ready.status, 200, 'an optional model cannot hold readiness');
    } finally {
      await h.close();
    }
  });
});
