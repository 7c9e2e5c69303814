// Text inputs: a UTF-8 string within the task's character limits.
import { IsoError } from '../../errors.js';

/** Characters (code points), not UTF-16 units: an emoji is one character. */
export function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** A lone surrogate cannot be encoded as UTF-8: refuse it rather than send U+FFFD to the model. */
function loneSurrogate(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      else return i;
    } else if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}

export interface TextRule {
  minLength: number;
  maxLength: number;
}

export function validateText(raw: unknown, rule: TextRule, field: string): string {
  if (typeof raw !== 'string') throw new IsoError('INVALID_INPUT', `${field} must be a string of text`);
  if (raw.includes('\u0000')) throw new IsoError('INVALID_INPUT', `${field} contains a NUL character`);
  const bad = loneSurrogate(raw);
  if (bad !== -1)
    throw new IsoError('INVALID_INPUT', `${field} is not valid Unicode: a lone surrogate at position ${bad + 1}`);
  const n = codePoints(raw);
  if (n > rule.maxLength)
    throw new IsoError('INPUT_TOO_LONG', `${field} has ${n} characters; the limit is ${rule.maxLength}`, {
      length: n,
      max_length: rule.maxLength,
    });
  if (n < rule.minLength)
    throw new IsoError(
      'INVALID_INPUT',
      n === 0 ? `${field} is empty` : `${field} has ${n} characters; this task needs at least ${rule.minLength}`,
      { length: n, min_length: rule.minLength },
    );
  return raw;
}
