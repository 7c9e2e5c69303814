// Pre/post-processing for the digits ONNX classifier (see MODEL_CARD.md): image bytes -> the
// 8 x 8 cells load_digits is made of (image.mjs) -> model.onnx -> digit and probabilities.
import { ModelError } from 'isomodel/worker';
import { CELLS, ImageError, loadDecoders, toCells } from './image.mjs';

const CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
// Decoded RGBA is 4 bytes a pixel: the manifest's max_pixels (4 MP) bounds it to 16 MB.
const LIMITS = { maxPixels: 4_000_000 };
// What each batch's preprocess learnt, for its postprocess (a batch is the same array object).
const prepared = new WeakMap();

export function setup() {
  try {
    loadDecoders();
  } catch (err) {
    throw new ModelError('MODEL_NOT_LOADED', err.message);
  }
}

export function preprocess(batch) {
  const items = batch.map((item) => {
    try {
      return toCells(item.input, LIMITS);
    } catch (err) {
      if (err instanceof ImageError) return { error: { code: err.code, message: err.message } };
      throw err;
    }
  });
  prepared.set(batch, items);
  const ok = items.filter((i) => !i.error);
  if (ok.length === 0) return {};
  const data = new Float32Array(ok.length * CELLS * CELLS);
  ok.forEach((i, k) => data.set(i.cells, k * CELLS * CELLS));
  return { pixels: { type: 'float32', data, dims: [ok.length, CELLS, CELLS] } };
}

export function postprocess(outputs, batch) {
  const items = prepared.get(batch);
  prepared.delete(batch);
  const p = outputs.probabilities?.data;
  let row = 0;
  return batch.map((item, i) => {
    const prep = items[i];
    if (prep.error) return { error: prep.error };
    const probs = CLASSES.map((_, k) => Number(p[row * CLASSES.length + k]));
    row++;
    const best = probs.indexOf(Math.max(...probs));
    const out = {
      prediction: CLASSES[best],
      digit: best,
      probabilities: Object.fromEntries(CLASSES.map((c, k) => [c, probs[k]])),
      details: {
        polarity: prep.polarity,
        ink_from: prep.inkFrom,
        image: { width: prep.width, height: prep.height },
        digit_box: prep.box,
      },
    };
    if (item.options.return_confidence !== false) out.confidence = probs[best];
    if (item.options.return_cells === true)
      out.details.cells = Array.from({ length: CELLS }, (_, r) =>
        Array.from(prep.cells.subarray(r * CELLS, (r + 1) * CELLS), (v) => Math.round(v * 100) / 100),
      );
    return out;
  });
}
