// What `isomodel predict <model> <input>` sends for a task that does not take sequences: the
// input read the way its type wants it (a file's bytes for image and audio, JSON for json and
// tensor, a user message or a conversation for chat, the text itself for text).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { InputType } from '../manifest/schema.js';

/** The largest file read for one input: the gateway's own limits are far below (base64 grows it by a third). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

export interface TypedRecord {
  id: string;
  input: unknown;
}

function isFile(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isFile();
  } catch {
    return false;
  }
}

function readFile(path: string): Buffer {
  const size = statSync(path).size;
  if (size > MAX_FILE_BYTES) throw new Error(`${path} is ${size} bytes; at most ${MAX_FILE_BYTES} are read`);
  return readFileSync(path);
}

/** The one record of a non-sequence task; `arg` is a file path or the value itself. */
export function typedRecord(type: Exclude<InputType, 'sequence'>, arg: string): TypedRecord {
  const file = isFile(arg);
  const id = file ? basename(arg) : 'input1';
  if (type === 'image' || type === 'audio') {
    if (!file) throw new Error(`this task takes ${type} input: give the path of a file (${arg} is not one)`);
    return { id, input: readFile(arg).toString('base64') };
  }
  const text = file ? readFile(arg).toString('utf8') : arg;
  if (type === 'text') return { id, input: file ? text.replace(/\r?\n$/, '') : text };
  if (type === 'chat') {
    // A conversation as JSON ({messages} or a list of messages), else one user message.
    const parsed = tryJson(text);
    if (Array.isArray(parsed)) return { id, input: { messages: parsed } };
    if (parsed && typeof parsed === 'object' && 'messages' in parsed) return { id, input: parsed };
    return { id, input: { messages: [{ role: 'user', content: text }] } };
  }
  const parsed = tryJson(text);
  if (parsed === undefined)
    throw new Error(
      `this task takes ${type} input: ${file ? `${arg} does not hold` : 'the argument is not'} valid JSON`,
    );
  return { id, input: parsed };
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
