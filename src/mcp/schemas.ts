// The JSON Schema of a task tool's arguments, from the task's manifest: `sequences` for sequence
// tasks, `inputs` (each one input of the task's type: text, the task's own JSON Schema, named
// tensors, base64 images or audio, chat conversations) for every other type, and `options`.
import type { TaskSpec } from '../manifest/schema.js';
import { CHAT_ROLES } from '../validation/inputs/chat.js';
import type { TensorSpec } from '../validation/inputs/tensor.js';

export type JsonSchema = Record<string, unknown>;

function optionSchemas(task: TaskSpec): Record<string, JsonSchema> {
  // fromEntries defines each key as data: an option named "__proto__" stays an option.
  return Object.fromEntries(
    Object.entries(task.options).map(([k, v]) => [
      k,
      typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonSchema) : { description: String(v) },
    ]),
  );
}

const OPTIONS_DESCRIPTION =
  'Task options (see each property). Options not listed are passed to the model unchanged, as the REST API does.';

function tensorSchema(t: TensorSpec): JsonSchema {
  const shape = `[${t.shape.join(', ')}]`;
  return {
    description: `${t.datatype} tensor of shape ${shape} (-1: any size): a nested array, or {datatype, shape, data} with data flat or nested, row-major`,
    anyOf: [
      { type: 'array' },
      {
        type: 'object',
        properties: {
          datatype: { type: 'string', const: t.datatype },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
          data: { type: 'array' },
        },
        required: ['data'],
        additionalProperties: false,
      },
    ],
  };
}

function mediaSchema(task: TaskSpec): JsonSchema {
  const limits =
    task.input_type === 'image'
      ? `at most ${task.max_bytes} bytes and ${task.max_pixels} pixels`
      : `at most ${task.max_bytes} bytes and ${task.max_seconds} s`;
  return {
    description: `${task.input_type === 'image' ? 'An image' : 'Audio'} (${task.formats.join(', ')}), ${limits}: base64 text, a data: URL, or {data: base64, format}. The format is read from the bytes.`,
    anyOf: [
      { type: 'string', contentEncoding: 'base64' },
      {
        type: 'object',
        properties: {
          data: { type: 'string', contentEncoding: 'base64' },
          format: { type: 'string', enum: [...task.formats] },
        },
        required: ['data'],
        additionalProperties: false,
      },
    ],
  };
}

/** JSON Schema of one input of a non-sequence task, and definitions its $refs need at the root. */
function itemSchema(task: TaskSpec): { schema: JsonSchema; defs: JsonSchema } {
  switch (task.input_type) {
    case 'text':
      return {
        schema: {
          type: 'string',
          minLength: task.min_length,
          maxLength: task.max_length,
          description: `Text, ${task.min_length} to ${task.max_length} characters. ${task.input.description}`.trim(),
        },
        defs: {},
      };
    case 'json': {
      // The task's own schema; its definitions move to the tool schema's root so that local
      // $refs (#/$defs/…, #/definitions/…) still resolve there.
      const { $schema: _s, $id: _i, $defs, definitions, ...rest } = task.schema as JsonSchema;
      const defs: JsonSchema = {};
      if ($defs !== undefined) defs.$defs = $defs;
      if (definitions !== undefined) defs.definitions = definitions;
      return {
        schema: {
          ...rest,
          description:
            `${(rest.description as string | undefined) ?? task.input.description ?? ''} (a JSON value matching this schema, at most ${task.max_bytes} bytes)`.trim(),
        },
        defs,
      };
    }
    case 'tensor':
      return {
        schema: {
          type: 'object',
          description: `Named tensors: ${task.tensors.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ')}; at most ${task.max_elements} elements in all.`,
          properties: Object.fromEntries(task.tensors.map((t) => [t.name, tensorSchema(t)])),
          required: task.tensors.map((t) => t.name),
          additionalProperties: false,
        },
        defs: {},
      };
    case 'image':
    case 'audio':
      return { schema: mediaSchema(task), defs: {} };
    case 'chat':
      return {
        schema: {
          type: 'object',
          description: `A conversation of at most ${task.max_messages} messages and ${task.max_length} characters of content.`,
          properties: {
            messages: {
              type: 'array',
              minItems: 1,
              maxItems: task.max_messages,
              items: {
                type: 'object',
                properties: {
                  role: { type: 'string', enum: [...CHAT_ROLES] },
                  content: { type: 'string' },
                  name: { type: 'string' },
                },
                required: ['role', 'content'],
              },
            },
          },
          required: ['messages'],
          additionalProperties: false,
        },
        defs: {},
      };
    case 'sequence':
      throw new Error('sequence tasks take `sequences`');
  }
}

export function taskInputSchema(task: TaskSpec, maxBatch: number): JsonSchema {
  const options = {
    type: 'object',
    description: OPTIONS_DESCRIPTION,
    properties: optionSchemas(task),
    additionalProperties: true,
  };
  if (task.input_type !== 'sequence') {
    const { schema, defs } = itemSchema(task);
    return {
      type: 'object',
      properties: {
        inputs: {
          type: 'array',
          description: `1 to ${maxBatch} ${task.input_type} inputs, each answered in order.`,
          items: schema,
          minItems: 1,
          maxItems: maxBatch,
        },
        options,
      },
      required: ['inputs'],
      additionalProperties: false,
      ...defs,
    };
  }
  const types = task.sequence_types.join(' or ');
  return {
    type: 'object',
    properties: {
      sequences: {
        type: 'array',
        description:
          `${types} sequences (IUPAC letters, case-insensitive, whitespace ignored), ${task.min_length} to ${task.max_length} residues each. ${task.input.description}`.trim(),
        items: { type: 'string', minLength: task.min_length, maxLength: task.max_length },
        minItems: 1,
        maxItems: maxBatch,
      },
      options,
      sequence_type: {
        type: 'string',
        enum: [...task.sequence_types],
        description: `Read every sequence as this type instead of detecting it (accepted: ${task.sequence_types.join(', ')}).`,
      },
    },
    required: ['sequences'],
    additionalProperties: false,
  };
}

/** One line on what a task's tool takes. */
