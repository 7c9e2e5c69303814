// Image and audio inputs: bytes as base64 (mediaInput, mediaFile) or as uploads (mediaBlob, for
// predictMedia's multipart or raw body). No Buffer, no btoa: the client runs anywhere fetch does.
import type { MediaInput, MediaUpload } from './types.js';

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 of some bytes, without Buffer or btoa (the client runs anywhere fetch does). */
export function toBase64(bytes: Uint8Array): string {
  const out: string[] = [];
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out.push(BASE64[n >> 18]! + BASE64[(n >> 12) & 63]! + BASE64[(n >> 6) & 63]! + BASE64[n & 63]!);
  }
  if (i < bytes.length) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8);
    out.push(BASE64[n >> 18]! + BASE64[(n >> 12) & 63]! + (i + 1 < bytes.length ? BASE64[(n >> 6) & 63]! : '=') + '=');
  }
  return out.join('');
}

const EXTENSION_FORMATS: Record<string, string> = {
  png: 'png',
  jpg: 'jpeg',
  jpeg: 'jpeg',
  gif: 'gif',
  bmp: 'bmp',
  webp: 'webp',
  wav: 'wav',
  flac: 'flac',
  ogg: 'ogg',
  oga: 'ogg',
  mp3: 'mp3',
};

/** A file's bytes (Node, Deno, Bun); node:fs is imported when called, so the client still loads where there is no file system (browsers). */
async function readFileBytes(file: string): Promise<Uint8Array> {
  const fs = (await import('node:fs/promises' as string)) as { readFile(p: string): Promise<Uint8Array> };
  return fs.readFile(file);
}

/** The format a file name's extension stands for (png, jpeg, wav…), if it is one of them. */
function extensionFormat(file: string): string | undefined {
  const ext = /\.([A-Za-z0-9]+)$/.exec(file)?.[1]?.toLowerCase();
  return ext ? EXTENSION_FORMATS[ext] : undefined;
}

/** Image or audio bytes (a Buffer, Uint8Array or ArrayBuffer) as an input; `format` (png, jpeg, wav…) is checked against the bytes. */
export function mediaInput(bytes: Uint8Array | ArrayBuffer, format?: string): MediaInput {
  const data = toBase64(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  return format === undefined ? { data } : { data, format };
}

/** An image or audio file as an input (Node, Deno, Bun): its extension names the format unless `format` does. */
export async function mediaFile(file: string, format?: string): Promise<MediaInput> {
  return mediaInput(await readFileBytes(file), format ?? extensionFormat(file));
}

/**
 * The format's media type (what a raw body or a form part is sent as). The gateway checks uploads
 * against this same table (src/validation/inputs/media.ts imports it: the client cannot import
 * the gateway's code, it is published alone).
 */
export const MEDIA_TYPES: Readonly<
  Record<'png' | 'jpeg' | 'gif' | 'bmp' | 'webp' | 'wav' | 'flac' | 'ogg' | 'mp3', string>
> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  bmp: 'image/bmp',
  webp: 'image/webp',
  wav: 'audio/wav',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

/** Bytes with a name and a media type, for a form part or a raw body. */
export interface NamedBlob extends Blob {
  readonly name: string;
}

/** A source of media bytes as a Blob named for its form part; its type from `format`, else the extension, else the Blob's own. */
export async function mediaBlob(media: MediaUpload, format: string | undefined): Promise<NamedBlob> {
  let bytes: Blob | Uint8Array;
  let name = 'upload';
  let fromName: string | undefined;
  if (typeof media === 'string') {
    bytes = await readFileBytes(media);
    name = media.split(/[\\/]/).pop() || name;
    fromName = extensionFormat(media);
  } else if (media instanceof Uint8Array) bytes = media;
  else if (media instanceof ArrayBuffer) bytes = new Uint8Array(media);
  else {
    bytes = media;
    const n = (media as { name?: unknown }).name;
    if (typeof n === 'string' && n !== '') name = n;
  }
  const known = format ?? fromName;
  const type =
    (known !== undefined ? (MEDIA_TYPES as Record<string, string | undefined>)[known.toLowerCase()] : undefined) ??
    (bytes instanceof Blob ? bytes.type : '');
  // Copied into a plain ArrayBuffer-backed array: a Buffer may sit in a shared pool.
  const blob = new Blob([bytes instanceof Blob ? bytes : new Uint8Array(bytes)], type ? { type } : {});
  return Object.assign(blob, { name }) as NamedBlob;
}
