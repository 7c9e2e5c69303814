// Image and audio inputs. In JSON: base64 text, a data: URL, or {data, format?, media_type?};
// from a raw body or a multipart file part: the bytes themselves, with the content type the
// client gave. The size is checked before decoding, the format is sniffed from the bytes and must
// be one the task takes (and the one the client named, if it named one), and the container is
// walked so a truncated file is refused here, not deep inside a model.
import { IsoError } from '../../errors.js';
import { decodeBase64, decodedLength } from './base64.js';
import {
  formatFromMediaType,
  inspectAudio,
  inspectImage,
  MEDIA_TYPES,
  MediaError,
  type AudioInfo,
  type ImageInfo,
  type MediaFormat,
} from './media.js';

/** Bytes that arrived as bytes (raw body, multipart), not as JSON text. */
export class RawMedia {
  constructor(
    readonly bytes: Buffer,
    readonly mediaType?: string,
  ) {}
}

export interface MediaRule {
  kind: 'image' | 'audio';
  formats: readonly MediaFormat[];
  maxBytes: number;
  /** image: width × height. */
  maxPixels?: number;
  /** audio: duration, where the container says it. */
  maxSeconds?: number;
}

/** What the worker gets: the bytes as base64 plus what the gateway learnt from them. */
export type MediaValue = { format: MediaFormat; media_type: string; bytes: number; data: string } & (
  Omit<ImageInfo, 'format'> | Omit<AudioInfo, 'format'>
);

const DATA_URL = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?((?:;[a-z0-9-]+=[^;,]*)*)(;base64)?,/i;

function tooLarge(field: string, bytes: number, max: number): IsoError {
  return new IsoError('PAYLOAD_TOO_LARGE', `${field} is ${bytes} bytes; the limit is ${max}`, {
    bytes,
    max_bytes: max,
  });
}

/** The bytes and the format the client claims for them, from any accepted spelling. */
function readBytes(
  raw: unknown,
  rule: MediaRule,
  field: string,
): { bytes: Buffer; claimed: MediaFormat | null; claimedAs?: string } {
  if (raw instanceof RawMedia) {
    if (raw.bytes.length > rule.maxBytes) throw tooLarge(field, raw.bytes.length, rule.maxBytes);
    return {
      bytes: raw.bytes,
      claimed: raw.mediaType ? formatFromMediaType(raw.mediaType) : null,
      claimedAs: raw.mediaType,
    };
  }
  let text: string;
  let claimedAs: string | undefined;
  if (typeof raw === 'string') text = raw;
  else if (
    typeof raw === 'object' &&
    raw !== null &&
    !Array.isArray(raw) &&
    typeof (raw as { data?: unknown }).data === 'string'
  ) {
    const o = raw as { data: string; format?: unknown; media_type?: unknown };
    text = o.data;
    if (typeof o.media_type === 'string') claimedAs = o.media_type;
    else if (typeof o.format === 'string') claimedAs = MEDIA_TYPES[o.format.toLowerCase() as MediaFormat] ?? o.format;
  } else
    throw new IsoError(
      'INVALID_INPUT',
      `${field} must be ${rule.kind === 'image' ? 'an image' : 'audio'} as base64 text, a data: URL, or {data, format?}`,
    );
  const url = DATA_URL.exec(text.slice(0, 200));
  if (url) {
    if (!url[3]) throw new IsoError('INVALID_INPUT', `${field} is a data: URL without ;base64`);
    claimedAs ??= url[1];
    text = text.slice(url[0].length);
  }
  if (decodedLength(text.replace(/\s+/g, '')) > rule.maxBytes + 2)
    throw tooLarge(field, decodedLength(text), rule.maxBytes);
  const bytes = decodeBase64(text, field);
  if (bytes.length > rule.maxBytes) throw tooLarge(field, bytes.length, rule.maxBytes);
  const claimed = claimedAs
    ? (formatFromMediaType(claimedAs) ??
      (MEDIA_TYPES[claimedAs.toLowerCase() as MediaFormat] ? (claimedAs.toLowerCase() as MediaFormat) : null))
    : null;
  if (claimedAs && !claimed)
    throw new IsoError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${field}: ${JSON.stringify(claimedAs.slice(0, 60))} is not a media type this task takes (${rule.formats.join(', ')})`,
    );
  return { bytes, claimed, claimedAs };
}

export function validateMedia(raw: unknown, rule: MediaRule, field: string): MediaValue {
  const { bytes, claimed, claimedAs } = readBytes(raw, rule, field);
  let info: ImageInfo | AudioInfo;
  try {
    info = rule.kind === 'image' ? inspectImage(bytes) : inspectAudio(bytes);
  } catch (e) {
    if (e instanceof MediaError)
      throw new IsoError('UNSUPPORTED_MEDIA_TYPE', `${field}: ${e.message}`, { accepted: rule.formats });
    throw e;
  }
  if (claimed && claimed !== info.format)
    throw new IsoError('UNSUPPORTED_MEDIA_TYPE', `${field} is sent as ${claimedAs}, but the bytes are ${info.format}`, {
      claimed: claimedAs,
      detected: info.format,
    });
  if (!rule.formats.includes(info.format))
    throw new IsoError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${field} is ${info.format}; this task takes ${rule.formats.join(', ')}`,
      { detected: info.format, accepted: rule.formats },
    );
  if ('width' in info && rule.maxPixels !== undefined && info.width * info.height > rule.maxPixels) {
    throw new IsoError(
      'PAYLOAD_TOO_LARGE',
      `${field} is ${info.width}×${info.height} pixels; the limit is ${rule.maxPixels} pixels`,
      { width: info.width, height: info.height, max_pixels: rule.maxPixels },
    );
  }
  if (
    'duration_s' in info &&
    info.duration_s !== undefined &&
    rule.maxSeconds !== undefined &&
    info.duration_s > rule.maxSeconds
  ) {
    throw new IsoError(
      'PAYLOAD_TOO_LARGE',
      `${field} lasts ${info.duration_s.toFixed(1)} s; the limit is ${rule.maxSeconds} s`,
      { duration_s: info.duration_s, max_seconds: rule.maxSeconds },
    );
  }
  const { format, ...rest } = info;
  return { format, media_type: MEDIA_TYPES[format], bytes: bytes.length, ...rest, data: bytes.toString('base64') };
}
