// How deep JSON may nest, and a check that needs no parse: one limit for the gateway's JSON
// parser and the job intake's streaming scanner.

/**
 * Deeper JSON than any request of any surface needs. Code that walks bodies recursively (job
 * request hashing, OIP tensor flattening, JSON.stringify in logs and SDKs) overflowed the stack
 * on ~10k levels and answered 500; JSON.parse itself accepts a million. Checked before parsing.
 */
export const MAX_JSON_DEPTH = 256;

/** Whether JSON text nests arrays/objects deeper than `max` (a linear scan that skips strings). */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
