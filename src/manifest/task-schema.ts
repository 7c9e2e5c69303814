// A model.yaml task: its input type and that type's limits, its output, options and tensors.
import { z } from 'zod';
import { compileSchema } from '../validation/inputs/json.js';
import { AUDIO_FORMATS, IMAGE_FORMATS, type MediaFormat } from '../validation/inputs/media.js';
import { TENSOR_DATATYPES } from '../validation/inputs/tensor.js';
import { MAX_TASK_OPTIONS, SEQUENCE_TYPES, sequenceType, TASK_NAME_PATTERN, text } from './schema-fields.js';

export const ioDescription = z
  .object({
    type: z.string().max(64).default('object'),
    description: text.default(''),
    example: z.unknown().optional(),
    range: z.tuple([z.number(), z.number()]).optional(),
  })
  .passthrough();

/** What a task takes (docs/models.md). `sequence` is the default: every older package is one. */
export const INPUT_TYPES = ['sequence', 'text', 'json', 'tensor', 'image', 'audio', 'chat'] as const;
export type InputType = (typeof INPUT_TYPES)[number];

/** Per type: the default max_length (characters or residues) and max_bytes, and the formats taken. */
const TYPE_DEFAULTS: Record<InputType, { max_length: number; max_bytes: number; formats: readonly string[] }> = {
  sequence: { max_length: 5120, max_bytes: 0, formats: [] },
  text: { max_length: 10_000, max_bytes: 0, formats: [] },
  json: { max_length: 0, max_bytes: 64 * 1024, formats: [] },
  tensor: { max_length: 0, max_bytes: 0, formats: [] },
  image: { max_length: 0, max_bytes: 5 * 1024 * 1024, formats: ['png', 'jpeg'] },
  audio: { max_length: 0, max_bytes: 10 * 1024 * 1024, formats: ['wav'] },
  chat: { max_length: 32_000, max_bytes: 0, formats: [] },
};
/** Fields that only mean something for some input types (anything else is a manifest error). */
const TYPE_FIELDS: Record<string, readonly InputType[]> = {
  sequence_types: ['sequence'],
  max_ambiguous_fraction: ['sequence'],
  max_length: ['sequence', 'text', 'chat'],
  min_length: ['sequence', 'text'],
  schema: ['json'],
  max_bytes: ['json', 'image', 'audio'],
  formats: ['image', 'audio'],
  max_pixels: ['image'],
  max_seconds: ['audio'],
  tensors: ['tensor'],
  max_elements: ['tensor'],
  max_messages: ['chat'],
};

const tensorSpec = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/, 'tensor names: letters, digits, "_", ".", ":" and "-", at most 64'),
    datatype: z.enum(TENSOR_DATATYPES),
    /** -1: any size in that dimension. */
    shape: z
      .array(
        z
          .number()
          .int()
          .min(-1)
          .max(2 ** 31),
      )
      .max(8),
  })
  .strict();

export const taskSchema = z
  .object({
    name: z.string().regex(TASK_NAME_PATTERN, 'task names are lower_snake_case'),
    description: text.default(''),
    input_type: z.enum(INPUT_TYPES).default('sequence'),
    /** sequence: the sequence types taken (required). */
    sequence_types: z.array(sequenceType).min(1).max(SEQUENCE_TYPES.length).optional(),
    /** sequence: residues (default 5120); text, chat: characters (default 10,000 and 32,000). */
    max_length: z.number().int().positive().max(10_000_000).optional(),
    min_length: z.number().int().min(1).optional(),
    /**
     * Largest fraction of ambiguous letters (nucleotide IUPAC codes other than A/C/G/T/U, protein
     * B/Z/J/X) a sequence may hold; past it the gateway answers 400 LOW_INFORMATION_SEQUENCE
     * instead of a confident answer about nothing. 1 = the model handles ambiguity itself.
     */
    max_ambiguous_fraction: z.number().min(0).max(1).optional(),
    /** json: the JSON Schema an input must match (draft-07, or 2020-12 when its $schema says so). */
    schema: z.record(z.string().max(256), z.unknown()).optional(),
    /** json: bytes of the item's JSON (64 KiB); image: 5 MiB; audio: 10 MiB. */
    max_bytes: z
      .number()
      .int()
      .positive()
      .max(256 * 1024 * 1024)
      .optional(),
    /** image: png, jpeg, gif, bmp, webp (default png, jpeg); audio: wav, flac, ogg, mp3 (default wav). */
    formats: z.array(z.string().max(16)).min(1).max(8).optional(),
    /** image: width × height at most (default 40 million). */
    max_pixels: z.number().int().positive().max(1_000_000_000).optional(),
    /** audio: duration at most, in seconds, where the container says it (default 600). */
    max_seconds: z.number().positive().max(86_400).optional(),
    /** tensor: the named input tensors, as the Open Inference Protocol describes them. */
    tensors: z.array(tensorSpec).min(1).max(64).optional(),
    /** tensor: elements over all tensors of one item (default 1,000,000). */
    max_elements: z.number().int().positive().max(100_000_000).optional(),
    /** chat: messages per conversation (default 100). */
    max_messages: z.number().int().positive().max(10_000).optional(),
    input: ioDescription.default({}),
    output: ioDescription.default({}),
    /** Options this task understands, described for clients (MCP schemas, docs). */
    options: z
      .record(z.string().max(64), z.unknown())
      .refine((o) => Object.keys(o).length <= MAX_TASK_OPTIONS, { message: `at most ${MAX_TASK_OPTIONS} options` })
      .default({}),
  })
  .strict()
  .superRefine((t, ctx) => {
    for (const [field, types] of Object.entries(TYPE_FIELDS)) {
      if ((t as Record<string, unknown>)[field] !== undefined && !types.includes(t.input_type)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: [field],
          message: `${field} applies to input_type ${types.join(' or ')}, not ${t.input_type}`,
        });
      }
    }
    if (t.input_type === 'sequence' && !t.sequence_types)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['sequence_types'],
        message: 'required for input_type sequence',
      });
    if (t.input_type === 'json') {
      if (!t.schema)
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['schema'], message: 'input_type json needs a JSON Schema' });
      else {
        try {
          compileSchema(t.schema);
        } catch (e) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['schema'],
            message: `not a valid JSON Schema: ${(e as Error).message.slice(0, 300)}`,
          });
        }
      }
    }
    if (t.input_type === 'tensor' && !t.tensors)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['tensors'],
        message: 'input_type tensor needs its tensors [{name, datatype, shape}]',
      });
    if (t.tensors && new Set(t.tensors.map((x) => x.name)).size !== t.tensors.length)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tensors'], message: 'tensor names must differ' });
    if (t.formats) {
      const allowed: readonly string[] = t.input_type === 'image' ? IMAGE_FORMATS : AUDIO_FORMATS;
      for (const f of t.formats)
        if (!allowed.includes(f))
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['formats'],
            message: `${f} is not one of ${allowed.join(', ')}`,
          });
    }
  })
  .transform((t) => {
    const d = TYPE_DEFAULTS[t.input_type];
    return {
      ...t,
      sequence_types: t.sequence_types ?? [],
      max_length: t.max_length ?? d.max_length,
      min_length: t.min_length ?? 1,
      max_ambiguous_fraction: t.max_ambiguous_fraction ?? 0.5,
      max_bytes: t.max_bytes ?? d.max_bytes,
      formats: (t.formats ?? d.formats) as MediaFormat[],
      max_pixels: t.max_pixels ?? 40_000_000,
      max_seconds: t.max_seconds ?? 600,
      tensors: t.tensors ?? [],
      max_elements: t.max_elements ?? 1_000_000,
      max_messages: t.max_messages ?? 100,
    };
  });

export type TaskSpec = z.infer<typeof taskSchema>;
