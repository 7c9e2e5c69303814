// The exchange JSON input, read piece by piece.
import {
  InputFormatError,
  parseExchangeObject,
  parseJsonText,
  pushAll,
  type InputRecord,
  type RecordParser,
} from './input-records.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * The exchange JSON: a top-level array is split into its elements as the text arrives, each
 * parsed on its own; a single document (one object) is parsed once complete.
 */
export function jsonParser(label: string): RecordParser {
  let mode: 'start' | 'array' | 'doc' | 'done' = 'start';
  let doc: string[] = [];
  let elem: string[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let index = 0;
  let count = 0;
  let out: InputRecord[] = [];

  const element = (closing: boolean): void => {
    const text = elem.join('').trim();
    elem = [];
    if (text === '') {
      if (closing && index === 0) return; // []
      throw new InputFormatError(`${label}[${index}]: not valid JSON (an empty element)`);
    }
    const where = `${label}[${index}]`;
    const recs = parseExchangeObject(parseJsonText(text, where), `seq${count + 1}`, where).records;
    count += recs.length;
    index++;
    pushAll(out, recs);
  };

  const take = (): InputRecord[] => {
    const o = out;
    out = [];
    return o;
  };

  return {
    push(text) {
      let i = 0;
      const n = text.length;
      if (mode === 'start') {
        while (i < n && /\s/.test(text[i]!)) i++;
        if (i === n) return [];
        if (text.charCodeAt(i) === OPEN_ARRAY) {
          mode = 'array';
          i++;
        } else mode = 'doc';
      }
      if (mode === 'doc') {
        doc.push(i ? text.slice(i) : text);
        return [];
      }
      if (mode === 'done') {
        if (text.slice(i).trim() !== '')
          throw new InputFormatError(`${label}: not valid JSON (text after the closing "]")`);
        return [];
      }
      let seg = i;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          continue;
        }
        if (c === QUOTE) inString = true;
        else if (c === OPEN_ARRAY || c === OPEN_OBJECT) depth++;
        else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
          if (depth > 0) {
            depth--;
            continue;
          }
          if (c === CLOSE_OBJECT) throw new InputFormatError(`${label}[${index}]: not valid JSON (unexpected "}")`);
          elem.push(text.slice(seg, i));
          element(true);
          mode = 'done';
          if (text.slice(i + 1).trim() !== '')
            throw new InputFormatError(`${label}: not valid JSON (text after the closing "]")`);
          return take();
        } else if (c === COMMA && depth === 0) {
          elem.push(text.slice(seg, i));
          element(false);
          seg = i + 1;
        }
      }
      elem.push(text.slice(seg));
      return take();
    },
    end() {
      if (mode === 'start') throw new InputFormatError(`${label}: not valid JSON (the input is empty)`);
      if (mode === 'array') throw new InputFormatError(`${label}: not valid JSON (the array is not closed)`);
      if (mode === 'doc') {
        const text = doc.join('');
        doc = [];
        pushAll(out, parseExchangeObject(parseJsonText(text, label), 'seq1', label).records);
      }
      return take();
    },
  };
}
