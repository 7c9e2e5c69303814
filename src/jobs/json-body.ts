// A JSON job submission read piece by piece: {model | pipeline | pipeline_yaml, sequences |
// inputs | data, options, …}. The body is one object whose list (`sequences` or `inputs`) may
// hold a million entries; parsing it in one JSON.parse, then walking it to hash it, blocked the
// event loop for seconds. The scanner here goes through the text as it is read back from disk:
// the object's other members are captured whole (they are small, but `data`, file text, is
// bounded only by the upload limit), the list is split into its entries, each parsed on its own.
import { InputFormatError } from './input-records.js';
import {
  BACKSLASH,
  CLOSE_ARRAY,
  CLOSE_OBJECT,
  COLON,
  COMMA,
  NestingScanner,
  OPEN_ARRAY,
  OPEN_OBJECT,
  QUOTE,
  TOO_DEEP,
} from './json-scan.js';
import { MAX_JSON_DEPTH } from '../util/json-depth.js';

// As the gateway's JSON parser: deeper nesting is refused before anything walks it.
export { MAX_JSON_DEPTH };

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export interface ObjectScanHandlers {
  /** A member other than a streamed list: its key and its whole JSON text. */
  member(key: string, text: string): void;
  /** One entry of a streamed list, as JSON text, with its position. */
  entry(key: string, text: string, index: number): void;
}

type State = 'start' | 'keyOrEnd' | 'key' | 'colon' | 'valueStart' | 'value' | 'entries' | 'afterValue' | 'done';

/**
 * Scans the text of one JSON object fed in pieces. The members named in `streamed` whose value
 * is an array are handed over entry by entry; every other member whole. Throws InputFormatError
 * on text that is not one JSON object, a key given twice, or nesting over MAX_JSON_DEPTH.
 */
export class JsonObjectScanner {
  private state: State = 'start';
  private afterComma = false;
  private key = '';
  private readonly seen = new Set<string>();
  private pieces: string[] = [];
  /** Through a value or a list. */
  private readonly scan = new NestingScanner();
  /** In a key, after a backslash. */
  private escaped = false;
  private index = 0;

  constructor(
    private readonly streamed: ReadonlySet<string>,
    private readonly handlers: ObjectScanHandlers,
    private readonly label = 'request body',
  ) {}

  private fail(why: string): never {
    throw new InputFormatError(`${this.label}: not valid JSON (${why})`);
  }

  private tooDeep(): never {
    throw new InputFormatError(`${this.label}: JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
  }

  push(text: string): void {
    const n = text.length;
    let i = 0;
    // Where the text being captured (key, value, entry) starts in this piece.
    let from = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      switch (this.state) {
        case 'start':
        case 'keyOrEnd':
        case 'colon':
        case 'valueStart':
        case 'afterValue':
        case 'done':
          if (isSpace(c)) {
            i++;
            continue;
          }
          break;
      }
      switch (this.state) {
        case 'start':
          if (c !== OPEN_OBJECT) this.fail('a job submission is a JSON object');
          this.state = 'keyOrEnd';
          i++;
          continue;
        case 'keyOrEnd':
          if (c === CLOSE_OBJECT && !this.afterComma) {
            this.state = 'done';
            i++;
            continue;
          }
          if (c !== QUOTE) this.fail(this.afterComma ? 'a key after ","' : 'a key or "}"');
          this.afterComma = false;
          this.state = 'key';
          this.pieces = [];
          from = i + 1;
          i++;
          continue;
        case 'key': {
          // Keys are short: scan to the closing quote.
          if (this.escaped) this.escaped = false;
          else if (c === BACKSLASH) this.escaped = true;
          else if (c === QUOTE) {
            this.pieces.push(text.slice(from, i));
            const raw = this.pieces.join('');
            this.pieces = [];
            let key: string;
            try {
              key = JSON.parse(`"${raw}"`) as string;
            } catch (e) {
              this.fail(`a bad key: ${(e as Error).message}`);
            }
            if (this.seen.has(key)) throw new InputFormatError(`${this.label}: "${key.slice(0, 64)}" is given twice`);
            this.seen.add(key);
            this.key = key;
            this.state = 'colon';
          }
          i++;
          continue;
        }
        case 'colon':
          if (c !== COLON) this.fail('":" after a key');
          this.state = 'valueStart';
          i++;
          continue;
        case 'valueStart':
          this.pieces = [];
          this.scan.reset();
          if (c === OPEN_ARRAY && this.streamed.has(this.key)) {
            this.state = 'entries';
            this.index = 0;
            i++;
            from = i;
          } else {
            this.state = 'value';
            from = i;
          }
          continue;
        case 'value':
        case 'entries': {
          // The hot loop: most of the text is in here.
          const entries = this.state === 'entries';
          const maxDepth = MAX_JSON_DEPTH - (entries ? 2 : 1);
          for (;;) {
            const j = this.scan.skip(text, i, maxDepth);
            if (j === TOO_DEEP) this.tooDeep();
            if (j === -1) {
              i = n;
              break;
            }
            const ch = text.charCodeAt(j);
            this.pieces.push(text.slice(from, j));
            i = j + 1;
            if (ch === COMMA) {
              from = i;
              if (entries) {
                this.entry(false);
                continue;
              }
              this.member();
              this.state = 'keyOrEnd';
              this.afterComma = true;
              break;
            }
            if (entries) {
              if (ch !== CLOSE_ARRAY) this.fail(`"}" in ${this.key}`);
              this.entry(true);
              this.state = 'afterValue';
              break;
            }
            if (ch !== CLOSE_OBJECT) this.fail('an unexpected "]"');
            this.member();
            this.state = 'done';
            break;
          }
          if (i >= n && (this.state === 'value' || this.state === 'entries')) this.pieces.push(text.slice(from, n));
          continue;
        }
        case 'afterValue':
          if (c === COMMA) {
            this.state = 'keyOrEnd';
            this.afterComma = true;
          } else if (c === CLOSE_OBJECT) this.state = 'done';
          else this.fail(`"," or "}" after ${this.key}`);
          i++;
          continue;
        case 'done':
          this.fail('text after the closing "}"');
      }
    }
    if (this.state === 'key') this.pieces.push(text.slice(from, n));
  }

  /** The object's keys so far. */
  keys(): ReadonlySet<string> {
    return this.seen;
  }

  end(): void {
    if (this.state === 'start') this.fail('the body is empty');
    if (this.state !== 'done') this.fail('the object is not closed');
  }

  private member(): void {
    const text = this.pieces.join('').trim();
    this.pieces = [];
    if (text === '') this.fail(`no value for ${this.key}`);
    this.handlers.member(this.key, text);
  }

  private entry(closing: boolean): void {
    const text = this.pieces.join('').trim();
    this.pieces = [];
    if (text === '') {
      if (closing && this.index === 0) return; // []
      this.fail(`${this.key}[${this.index}] is empty`);
    }
    this.handlers.entry(this.key, text, this.index++);
  }
}

/** JSON with sorted keys: equal values give equal text whatever their key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
