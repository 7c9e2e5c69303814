// The exchange JSON input, read piece by piece.
import {
  InputFormatError,
  parseExchangeObject,
  parseJsonText,
  RecordBatch,
  type RecordParser,
} from './input-records.js';
import { CLOSE_ARRAY, CLOSE_OBJECT, NestingScanner, OPEN_ARRAY } from './json-scan.js';

/**
 * The exchange JSON: a top-level array is split into its elements as the text arrives, each
 * parsed on its own; a single document (one object) is parsed once complete.
 */
export function jsonParser(label: string): RecordParser {
  let mode: 'start' | 'array' | 'doc' | 'done' = 'start';
  let doc: string[] = [];
  let elem: string[] = [];
  const scan = new NestingScanner();
  let index = 0;
  let count = 0;
  const batch = new RecordBatch();

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
    batch.addAll(recs);
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
      for (;;) {
        const j = scan.skip(text, seg);
        if (j === -1) break;
        const c = text.charCodeAt(j);
        if (c === CLOSE_OBJECT) throw new InputFormatError(`${label}[${index}]: not valid JSON (unexpected "}")`);
        elem.push(text.slice(seg, j));
        if (c === CLOSE_ARRAY) {
          element(true);
          mode = 'done';
          if (text.slice(j + 1).trim() !== '')
            throw new InputFormatError(`${label}: not valid JSON (text after the closing "]")`);
          return batch.take();
        }
        element(false);
        seg = j + 1;
      }
      elem.push(text.slice(seg));
      return batch.take();
    },
    end() {
      if (mode === 'start') throw new InputFormatError(`${label}: not valid JSON (the input is empty)`);
      if (mode === 'array') throw new InputFormatError(`${label}: not valid JSON (the array is not closed)`);
      if (mode === 'doc') {
        const text = doc.join('');
        doc = [];
        batch.addAll(parseExchangeObject(parseJsonText(text, label), 'seq1', label).records);
      }
      return batch.take();
    },
  };
}
