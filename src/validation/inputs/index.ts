// One entry point for every input type a task can declare (manifest `input_type`): each surface
// hands over what the client sent for one item, and gets back the work item's payload or an
// IsoError with a stable code. Sequences go through validation/sequence.ts exactly as before.
import { IsoError } from '../../errors.js';
import type { InputType, SequenceType, TaskSpec } from '../../manifest/schema.js';
import type { WorkItem } from '../../worker/protocol.js';
import { taskRule, validateSequence } from '../sequence.js';
import { validateChat } from './chat.js';
import { validateJson } from './json.js';
import { RawMedia, validateMedia } from './media-input.js';
import { validateTensors } from './tensor.js';
import { codePoints, validateText } from './text.js';

export { RawMedia } from './media-input.js';

/** A validated item without its options, and what the scheduler weighs it by. */
export interface ValidInput {
  payload: Pick<WorkItem, 'sequence' | 'input'>;
  /** sequence tasks: the type it was read as. */
  sequenceType?: SequenceType;
  /** Tokens for batching budgets: residues, characters, bytes / 1024, or tensor elements. */
  size: number;
}

/** Validates one item's raw input for `task`; `field` names it in errors (e.g. `inputs[3]`). */
export function validateInput(task: TaskSpec, raw: unknown, field: string, declared?: SequenceType): ValidInput {
  switch (task.input_type) {
    case 'sequence': {
      const v = validateSequence(raw, taskRule(task), declared, field);
      return { payload: { sequence: v.sequence }, sequenceType: v.type, size: v.sequence.length };
    }
    case 'text': {
      const text = validateText(raw, { minLength: task.min_length, maxLength: task.max_length }, field);
      return { payload: { input: text }, size: codePoints(text) };
    }
    case 'json': {
      const value = validateJson(raw, { schema: task.schema!, maxBytes: task.max_bytes }, field);
      return { payload: { input: value }, size: 1 };
    }
    case 'tensor': {
      const tensors = validateTensors(raw, { tensors: task.tensors, maxElements: task.max_elements }, field);
      return { payload: { input: tensors }, size: Object.values(tensors).reduce((n, t) => n + t.data.length, 0) };
    }
    case 'image':
    case 'audio': {
      const media = validateMedia(
        raw,
        {
          kind: task.input_type,
          formats: task.formats,
          maxBytes: task.max_bytes,
          maxPixels: task.max_pixels,
          maxSeconds: task.max_seconds,
        },
        field,
      );
      return { payload: { input: media }, size: Math.max(1, Math.ceil(media.bytes / 1024)) };
    }
    case 'chat': {
      const chat = validateChat(raw, { maxMessages: task.max_messages, maxLength: task.max_length }, field);
      return { payload: { input: chat }, size: chat.messages.reduce((n, m) => n + codePoints(m.content), 0) };
    }
  }
}

/** Whether a value is raw bytes a surface read from a body or a file part. */
export function isRawMedia(v: unknown): v is RawMedia {
  return v instanceof RawMedia;
}

/** Input types whose items a client may write as a plain string (`sequence`/`sequences` fields). */
export function takesStrings(t: InputType): boolean {
  return t === 'sequence' || t === 'text' || t === 'image' || t === 'audio';
}

/** The error a surface gives for a task that cannot carry this input type (e.g. images over OpenAI chat). */
export function unsupportedOn(surface: string, task: TaskSpec, accepted: readonly InputType[]): IsoError {
  return new IsoError(
    'INVALID_REQUEST',
    `${surface} takes ${accepted.join(' or ')} input; task ${task.name} takes ${task.input_type}`,
    { input_type: task.input_type, accepted },
  );
}
