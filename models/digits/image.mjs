// Image bytes -> the 8 x 8 cells load_digits is made of (see MODEL_CARD.md, "Pre-processing").
//
// load_digits comes from NIST's normalised 32 x 32 bitmaps of handwriting: every digit fills the
// bitmap's height, is centred across it, and each of the 8 x 8 cells counts the "on" pixels of
// one 4 x 4 block (0..16). We do the same to any PNG or JPEG:
//   1. decode (pngjs / jpeg-js, pure JavaScript) to RGBA;
//   2. ink in [0, 1]: from the alpha channel when the image has transparency (strokes on a
//      transparent canvas), else from the luma (ITU-R 601), with the paper read as the median
//      of the border: a light border means dark ink on light paper, a dark one the reverse;
//   3. the digit's box: rows and columns inside the central 99 % of the ink (stray specks and
//      JPEG noise at the edges do not stretch it);
//   4. the box scaled (area-averaged, both down and up) to the full 32-pixel height, its width by
//      the same factor (at most 32), centred in a 32 x 32 canvas;
//   5. each 4 x 4 block summed: 0..16, an anti-aliased edge counting as the fraction it covers.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export const CANVAS = 32;
export const CELLS = 8;
const BLOCK = CANVAS / CELLS;
/** Below this ink level (after normalisation) a pixel is paper: JPEG ringing, scanner noise. */
const NOISE_FLOOR = 0.1;
/** The paper and the darkest ink must differ by this much (of 255) for there to be a digit. */
const MIN_CONTRAST = 40;
/** Share of the ink left outside the digit's box on each side. */
const TRIM = 0.005;

export class ImageError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// pngjs and jpeg-js are isomodel's own dependencies. A package copied outside the isomodel folder
// cannot find them from its own path, so they are looked up from the worker host's too.
function requireDependency(name) {
  const bases = [import.meta.url];
  if (process.argv[1]) bases.push(pathToFileURL(process.argv[1]).href);
  for (const base of bases) {
    try {
      return createRequire(base)(name);
    } catch {
      // try the next place
    }
  }
  throw new ImageError(
    'MODEL_NOT_LOADED',
    `the npm package ${name} is not installed: run npm install in the isomodel folder`,
  );
}

let decoders;
/** Loads the decoders (setup calls it, so a missing one fails the load, not a request). */
export function loadDecoders() {
  decoders ??= { PNG: requireDependency('pngjs').PNG, jpeg: requireDependency('jpeg-js') };
  return decoders;
}

/** {format, data: base64} (what the gateway hands a worker) -> {width, height, rgba}. */
export function decode(input, { maxPixels }) {
  const { PNG, jpeg } = loadDecoders();
  const bytes = Buffer.from(input.data, 'base64');
  try {
    if (input.format === 'png') {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    if (input.format === 'jpeg') {
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: maxPixels / 1e6,
        maxMemoryUsageInMB: 256,
      });
      return { width: img.width, height: img.height, rgba: img.data };
    }
  } catch (err) {
    throw new ImageError('UNSUPPORTED_MEDIA_TYPE', `the ${input.format} image cannot be decoded: ${err.message}`);
  }
  throw new ImageError('UNSUPPORTED_MEDIA_TYPE', `${input.format} images are not taken (png, jpeg)`);
}

function median(values) {
  const s = Float64Array.from(values).sort();
  return s[s.length >> 1];
}

/** RGBA -> ink per pixel in [0, 1], and how it was read. */
export function inkMap({ width, height, rgba }) {
  const n = width * height;
  const ink = new Float32Array(n);
  let minA = 255;
  let maxA = 0;
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3];
    if (a < minA) minA = a;
    if (a > maxA) maxA = a;
  }
  if (maxA - minA >= MIN_CONTRAST) {
    for (let i = 0; i < n; i++) ink[i] = rgba[4 * i + 3] / 255;
    return finish(ink, 'alpha', 'opaque_on_transparent');
  }
  const grey = new Float32Array(n);
  let lo = 255;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const g = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
    grey[i] = g;
    if (g < lo) lo = g;
    if (g > hi) hi = g;
  }
  const frame = Math.max(1, Math.round(Math.min(width, height) * 0.05));
  const border = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (y < frame || y >= height - frame || x < frame || x >= width - frame) border.push(grey[y * width + x]);
    }
  }
  const paper = median(border);
  const darkInk = paper >= 128;
  const range = darkInk ? paper - lo : hi - paper;
  if (range < MIN_CONTRAST)
    throw new ImageError('INVALID_INPUT', 'no digit found: the image is blank or has too little contrast');
  for (let i = 0; i < n; i++) ink[i] = Math.min(1, Math.max(0, (darkInk ? paper - grey[i] : grey[i] - paper) / range));
  return finish(ink, 'luma', darkInk ? 'dark_on_light' : 'light_on_dark');

  function finish(map, from, polarity) {
    for (let i = 0; i < n; i++) if (map[i] < NOISE_FLOOR) map[i] = 0;
    return { ink: map, width, height, inkFrom: from, polarity };
  }
}

/** [start, end) of the central part of a profile that holds all but TRIM of the ink each side. */
function span(profile, total) {
  let acc = 0;
  let start = 0;
  while (start < profile.length - 1 && acc + profile[start] <= TRIM * total) acc += profile[start++];
  acc = 0;
  let end = profile.length;
  while (end > start + 1 && acc + profile[end - 1] <= TRIM * total) acc += profile[--end];
  return [start, end];
}

/** The digit's box: {x, y, width, height}. */
export function inkBox({ ink, width, height }) {
  const rows = new Float64Array(height);
  const cols = new Float64Array(width);
  let total = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = ink[y * width + x];
      rows[y] += v;
      cols[x] += v;
      total += v;
    }
  }
  if (total === 0)
    throw new ImageError('INVALID_INPUT', 'no digit found: the image is blank or has too little contrast');
  const [y0, y1] = span(rows, total);
  const [x0, x1] = span(cols, total);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * Area weights from `n` source pixels to `m` target pixels, the source laid on the target
 * interval [offset, offset + length): weights[s] = [[t, overlap], ...]; a fully covered target
 * pixel's weights sum to 1 (an average), a partly covered one's to the part covered.
 */
function areaWeights(n, m, offset, length) {
  const scale = length / n;
  const weights = [];
  for (let s = 0; s < n; s++) {
    const a = offset + s * scale;
    const b = a + scale;
    const list = [];
    for (let t = Math.max(0, Math.floor(a)); t < Math.min(m, Math.ceil(b)); t++) {
      const w = Math.min(b, t + 1) - Math.max(a, t);
      if (w > 0) list.push([t, w]);
    }
    weights.push(list);
  }
  return weights;
}

/** The box's ink on the 32 x 32 canvas: full height, width by the same factor (<= 32), centred. */
export function canvas({ ink, width }, box) {
  const w = Math.min(CANVAS, (box.width * CANVAS) / box.height);
  const wy = areaWeights(box.height, CANVAS, 0, CANVAS);
  const wx = areaWeights(box.width, CANVAS, (CANVAS - w) / 2, w);
  const rows = new Float64Array(box.height * CANVAS); // each source row spread over canvas columns
  for (let y = 0; y < box.height; y++) {
    const src = (box.y + y) * width + box.x;
    const out = y * CANVAS;
    for (let x = 0; x < box.width; x++) {
      const v = ink[src + x];
      if (v === 0) continue;
      for (const [t, weight] of wx[x]) rows[out + t] += v * weight;
    }
  }
  const out = new Float64Array(CANVAS * CANVAS);
  for (let y = 0; y < box.height; y++) {
    for (const [t, weight] of wy[y]) {
      for (let x = 0; x < CANVAS; x++) out[t * CANVAS + x] += rows[y * CANVAS + x] * weight;
    }
  }
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, out[i]);
  return out;
}

/** 32 x 32 canvas -> 8 x 8 cells, each the ink of a 4 x 4 block (0..16), row-major. */
export function cells(canvas32) {
  const out = new Float32Array(CELLS * CELLS);
  for (let y = 0; y < CANVAS; y++) {
    for (let x = 0; x < CANVAS; x++)
      out[Math.floor(y / BLOCK) * CELLS + Math.floor(x / BLOCK)] += canvas32[y * CANVAS + x];
  }
  return out;
}

/** A work item's image -> {cells, polarity, inkFrom, box, width, height}. */
export function toCells(input, limits) {
  const img = decode(input, limits);
  const map = inkMap(img);
  const box = inkBox(map);
  return {
    cells: cells(canvas(map, box)),
    polarity: map.polarity,
    inkFrom: map.inkFrom,
    box,
    width: img.width,
    height: img.height,
  };
}
