// Image and audio bytes: the format is read from the bytes themselves (never trusted from a
// file name or a content type), and the container is walked far enough to refuse a truncated or
// malformed file before a model spends time on it. Nothing is decoded here: models decode.

import { MEDIA_TYPES as CLIENT_MEDIA_TYPES } from '../../client/media.js';

export const IMAGE_FORMATS = ['png', 'jpeg', 'gif', 'bmp', 'webp'] as const;
export const AUDIO_FORMATS = ['wav', 'flac', 'ogg', 'mp3'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
export type AudioFormat = (typeof AUDIO_FORMATS)[number];
export type MediaFormat = ImageFormat | AudioFormat;

/** Each format's media type: the table the TypeScript client sends uploads with (one table for both). */
export const MEDIA_TYPES: Readonly<Record<MediaFormat, string>> = CLIENT_MEDIA_TYPES;

/** A media type as clients send it (aliases included) → our format name. */
export function formatFromMediaType(mediaType: string): MediaFormat | null {
  const t = mediaType.split(';')[0]!.trim().toLowerCase();
  const aliases: Record<string, MediaFormat> = {
    'image/png': 'png',
    'image/jpeg': 'jpeg',
    'image/jpg': 'jpeg',
    'image/pjpeg': 'jpeg',
    'image/gif': 'gif',
    'image/bmp': 'bmp',
    'image/x-ms-bmp': 'bmp',
    'image/webp': 'webp',
    'audio/wav': 'wav',
    'audio/wave': 'wav',
    'audio/x-wav': 'wav',
    'audio/vnd.wave': 'wav',
    'audio/flac': 'flac',
    'audio/x-flac': 'flac',
    'audio/ogg': 'ogg',
    'application/ogg': 'ogg',
    'audio/mpeg': 'mp3',
    'audio/mp3': 'mp3',
  };
  return aliases[t] ?? null;
}

/** Why the bytes are not a well-formed file of the format they claim to be. */
export class MediaError extends Error {}

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
}

export interface AudioInfo {
  format: AudioFormat;
  sample_rate?: number;
  channels?: number;
  bits_per_sample?: number;
  duration_s?: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The format the first bytes announce, or null. */
export function sniffFormat(b: Buffer): MediaFormat | null {
  if (b.length >= 8 && b.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a'))
    return 'gif';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF') {
    const kind = b.toString('latin1', 8, 12);
    if (kind === 'WEBP') return 'webp';
    if (kind === 'WAVE') return 'wav';
  }
  if (b.length >= 4 && b.toString('latin1', 0, 4) === 'fLaC') return 'flac';
  if (b.length >= 4 && b.toString('latin1', 0, 4) === 'OggS') return 'ogg';
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'ID3') return 'mp3';
  if (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x06) !== 0) return 'mp3';
  return null;
}

function need(b: Buffer, end: number, what: string): void {
  if (end > b.length) throw new MediaError(`truncated ${what}: ${b.length} bytes, needs at least ${end}`);
}

/** An image's size, refused when a side is zero (`problem`: the format's words for it). */
function sized(format: ImageFormat, width: number, height: number, problem: string): ImageInfo {
  if (width === 0 || height === 0) throw new MediaError(problem);
  return { format, width, height };
}

/** PNG: signature, IHDR first, every chunk whole, IEND last; width and height from IHDR. */
function inspectPng(b: Buffer): ImageInfo {
  let at = 8;
  let width = 0;
  let height = 0;
  let first = true;
  for (;;) {
    need(b, at + 8, 'PNG (a chunk header is cut off)');
    const len = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    if (len > 0x7fffffff) throw new MediaError('malformed PNG: chunk length out of range');
    need(b, at + 12 + len, `PNG (chunk ${type} is cut off)`);
    if (first) {
      if (type !== 'IHDR' || len !== 13) throw new MediaError('malformed PNG: the first chunk must be a 13-byte IHDR');
      width = b.readUInt32BE(at + 8);
      height = b.readUInt32BE(at + 12);
      first = false;
    }
    at += 12 + len;
    if (type === 'IEND') break;
  }
  return sized('png', width, height, 'malformed PNG: zero width or height');
}

/** JPEG: SOI, segments up to a start-of-frame (size), and an EOI at the end of the data. */
function inspectJpeg(b: Buffer): ImageInfo {
  let at = 2;
  let width = 0;
  let height = 0;
  while (at < b.length) {
    if (b[at] !== 0xff) throw new MediaError(`malformed JPEG: no marker at byte ${at}`);
    let marker = b[at + 1]!;
    while (marker === 0xff && at + 2 < b.length) marker = b[++at + 1]!; // fill bytes
    if (marker === 0xd9) break; // EOI before any frame
    if (marker === 0xda) {
      // Start of scan: entropy-coded data follows; the file must end with EOI.
      break;
    }
    if (marker >= 0xd0 && marker <= 0xd7) {
      at += 2;
      continue;
    }
    need(b, at + 4, 'JPEG (a segment header is cut off)');
    const len = b.readUInt16BE(at + 2);
    need(b, at + 2 + len, 'JPEG (a segment is cut off)');
    // SOF0..SOF15 except DHT (c4), JPG (c8), DAC (cc).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      height = b.readUInt16BE(at + 5);
      width = b.readUInt16BE(at + 7);
    }
    at += 2 + len;
  }
  let end = b.length;
  while (end > 2 && b[end - 1] === 0x00) end--; // some writers pad after EOI
  if (!(b[end - 2] === 0xff && b[end - 1] === 0xd9)) throw new MediaError('truncated JPEG: no end-of-image marker');
  return sized('jpeg', width, height, 'malformed JPEG: no frame header with a size');
}

function inspectGif(b: Buffer): ImageInfo {
  need(b, 13, 'GIF');
  const width = b.readUInt16LE(6);
  const height = b.readUInt16LE(8);
  if (b[b.length - 1] !== 0x3b) throw new MediaError('truncated GIF: no trailer');
  return sized('gif', width, height, 'malformed GIF: zero width or height');
}

function inspectBmp(b: Buffer): ImageInfo {
  need(b, 26, 'BMP');
  const size = b.readUInt32LE(2);
  const offset = b.readUInt32LE(10);
  if (size > b.length) throw new MediaError(`truncated BMP: header says ${size} bytes, got ${b.length}`);
  if (offset >= b.length) throw new MediaError('malformed BMP: pixel data offset past the end');
  const width = Math.abs(b.readInt32LE(18));
  const height = Math.abs(b.readInt32LE(22));
  return sized('bmp', width, height, 'malformed BMP: zero width or height');
}

/** RIFF: the declared size must fit the bytes. */
function riffSize(b: Buffer, what: string): void {
  need(b, 12, what);
  const declared = b.readUInt32LE(4) + 8;
  if (declared > b.length)
    throw new MediaError(`truncated ${what}: RIFF header says ${declared} bytes, got ${b.length}`);
}

function inspectWebp(b: Buffer): ImageInfo {
  riffSize(b, 'WebP');
  need(b, 30, 'WebP');
  const chunk = b.toString('latin1', 12, 16);
  let width = 0;
  let height = 0;
  if (chunk === 'VP8 ') {
    width = b.readUInt16LE(26) & 0x3fff;
    height = b.readUInt16LE(28) & 0x3fff;
  } else if (chunk === 'VP8L') {
    const bits = b.readUInt32LE(21);
    width = (bits & 0x3fff) + 1;
    height = ((bits >> 14) & 0x3fff) + 1;
  } else if (chunk === 'VP8X') {
    width = 1 + b.readUIntLE(24, 3);
    height = 1 + b.readUIntLE(27, 3);
  } else throw new MediaError(`malformed WebP: unknown chunk ${JSON.stringify(chunk)}`);
  return sized('webp', width, height, 'malformed WebP: zero width or height');
}

/** WAV: RIFF/WAVE, a PCM-style fmt chunk, and a data chunk whose size the bytes hold. */
function inspectWav(b: Buffer): AudioInfo {
  riffSize(b, 'WAV');
  let at = 12;
  let fmt: { channels: number; rate: number; bits: number; blockAlign: number } | null = null;
  while (at + 8 <= b.length) {
    const id = b.toString('latin1', at, at + 4);
    const len = b.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      if (len < 16) throw new MediaError('malformed WAV: fmt chunk shorter than 16 bytes');
      need(b, at + 8 + 16, 'WAV (fmt chunk)');
      fmt = {
        channels: b.readUInt16LE(at + 10),
        rate: b.readUInt32LE(at + 12),
        blockAlign: b.readUInt16LE(at + 20),
        bits: b.readUInt16LE(at + 22),
      };
      if (fmt.channels === 0 || fmt.rate === 0 || fmt.blockAlign === 0)
        throw new MediaError('malformed WAV: zero channels, sample rate or block size');
    } else if (id === 'data') {
      if (!fmt) throw new MediaError('malformed WAV: data chunk before the fmt chunk');
      if (at + 8 + len > b.length)
        throw new MediaError(`truncated WAV: data chunk says ${len} bytes, ${b.length - at - 8} present`);
      return {
        format: 'wav',
        sample_rate: fmt.rate,
        channels: fmt.channels,
        bits_per_sample: fmt.bits,
        duration_s: len / (fmt.blockAlign * fmt.rate),
      };
    }
    at += 8 + len + (len & 1);
  }
  throw new MediaError(fmt ? 'truncated WAV: no data chunk' : 'malformed WAV: no fmt chunk');
}

function inspectFlac(b: Buffer): AudioInfo {
  need(b, 42, 'FLAC');
  // STREAMINFO is the first metadata block: sample rate (20 bits), channels (3), bits (5), total samples (36).
  if ((b[4]! & 0x7f) !== 0) throw new MediaError('malformed FLAC: the first metadata block must be STREAMINFO');
  const x = b.readUInt32BE(18);
  const rate = x >>> 12;
  const channels = ((x >>> 9) & 0x7) + 1;
  const bits = ((x >>> 4) & 0x1f) + 1;
  const total = (x & 0xf) * 2 ** 32 + b.readUInt32BE(22);
  if (rate === 0) throw new MediaError('malformed FLAC: zero sample rate');
  return {
    format: 'flac',
    sample_rate: rate,
    channels,
    bits_per_sample: bits,
    duration_s: total ? total / rate : undefined,
  };
}

export function inspectImage(b: Buffer): ImageInfo {
  const f = sniffFormat(b);
  switch (f) {
    case 'png':
      return inspectPng(b);
    case 'jpeg':
      return inspectJpeg(b);
    case 'gif':
      return inspectGif(b);
    case 'bmp':
      return inspectBmp(b);
    case 'webp':
      return inspectWebp(b);
    default:
      throw new MediaError(
        f ? `the bytes are ${f} audio, not an image` : 'the bytes are not a PNG, JPEG, GIF, BMP or WebP image',
      );
  }
}

export function inspectAudio(b: Buffer): AudioInfo {
  const f = sniffFormat(b);
  switch (f) {
    case 'wav':
      return inspectWav(b);
    case 'flac':
      return inspectFlac(b);
    case 'ogg':
      need(b, 27, 'Ogg');
      return { format: 'ogg' };
    case 'mp3':
      need(b, 4, 'MP3');
      return { format: 'mp3' };
    default:
      throw new MediaError(
        f ? `the bytes are a ${f} image, not audio` : 'the bytes are not WAV, FLAC, Ogg or MP3 audio',
      );
  }
}
