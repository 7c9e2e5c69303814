// The nesting scan shared by the two JSON readers that split text fed in pieces at its top-level
// commas (input-json.ts: an exchange array; json-body.ts: a job submission's members and list).

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const OPEN_ARRAY = 0x5b;
export const CLOSE_ARRAY = 0x5d;
export const OPEN_OBJECT = 0x7b;
export const CLOSE_OBJECT = 0x7d;

/** What skip() returns when an opening bracket nests deeper than its maxDepth. */
export const TOO_DEEP = -2;

/** Where a scan through JSON text fed in pieces stands: the nesting depth, inside a string or not. */
export class NestingScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** A new value starts. */
  reset(): void {
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  /**
   * The index of the first `,`, `]` or `}` at depth 0 from `from` on (outside strings); -1 when
   * the text ends first (the scan goes on with the next piece), TOO_DEEP when a bracket opens a
   * level deeper than `maxDepth`.
   */
  skip(text: string, from: number, maxDepth = Infinity): number {
    const n = text.length;
    for (let i = from; i < n; i++) {
      const c = text.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (c === QUOTE) this.inString = true;
      else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
        if (++this.depth > maxDepth) return TOO_DEEP;
      } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
        if (this.depth === 0) return i;
        this.depth--;
      } else if (c === COMMA && this.depth === 0) return i;
    }
    return -1;
  }
}
