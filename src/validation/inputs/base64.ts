// Strict base64 for bytes that arrive in JSON: Buffer.from(s, 'base64') silently skips what is
// not base64, which would hand a model a different file than the client sent.
import { IsoError } from '../../errors.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Bytes a base64 text of this length holds at most (for a size check before decoding). */
export function decodedLength(text: string): number {
  return Math.floor((text.length * 3) / 4);
}

/** Decodes standard or URL-safe base64 (whitespace ignored); anything else is INVALID_INPUT. */
export function decodeBase64(text: string, field: string): Buffer {
  const s = /\s/.test(text) ? text.replace(/\s+/g, '') : text;
  if (s.length === 0) throw new IsoError('INVALID_INPUT', `${field} is empty`);
  if (BASE64.test(s)) {
    if (s.length % 4 !== 0)
      throw new IsoError(
        'INVALID_INPUT',
        `${field} is not valid base64: its length (${s.length}) is not a multiple of 4`,
      );
    return Buffer.from(s, 'base64');
  }
  if (BASE64URL.test(s)) return Buffer.from(s, 'base64url');
  const at = [...s].findIndex((c) => !/[A-Za-z0-9+/=_-]/.test(c));
  throw new IsoError(
    'INVALID_INPUT',
    `${field} is not valid base64${at >= 0 ? `: character ${JSON.stringify(s[at])} at position ${at + 1}` : ': misplaced padding'}`,
  );
}
