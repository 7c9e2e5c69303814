// The model.yaml contract. Every field a package can set is declared here, with defaults,
// so the rest of the runtime reads one normalised, fully-typed object.
import { z } from 'zod';
import { compileSchema } from '../validation/inputs/json.js';
import { AUDIO_FORMATS, IMAGE_FORMATS, type MediaFormat } from '../validation/inputs/media.js';
import { TENSOR_DATATYPES } from '../validation/inputs/tensor.js';

export const SEQUENCE_TYPES = ['DNA', 'RNA', 'protein'] as const;
export type SequenceType = (typeof SEQUENCE_TYPES)[number];

/** Model and task names end up in URLs and file paths: keep them to a safe alphabet. */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TASK_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

// Every size a package sets is bounded (the file's own size is, in load.ts): manifests are
// copied into /model/info, MCP tool lists, the OIP metadata and the state database.
/** Descriptions and other prose. */
const TEXT_MAX = 4096;
/** Paths and command-line words. */
const PATH_MAX = 4096;
export const MAX_TASKS = 64;
const MAX_TASK_OPTIONS = 64;
const MAX_ENV_VARS = 256;
const text = z.string().max(TEXT_MAX);
const path = z.string().max(PATH_MAX);

const sequenceType = z.preprocess(
  (v) => (typeof v === 'string' ? (SEQUENCE_TYPES.find((t) => t.toLowerCase() === v.toLowerCase()) ?? v) : v),
  z.enum(SEQUENCE_TYPES),
);

const ioDescription = z
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

/** onnxruntime-node's execution provider names. */
export const EXECUTION_PROVIDERS = ['cuda', 'tensorrt', 'dml', 'coreml', 'webgpu', 'cpu'] as const;

/** A URL path of the model's server: starts with "/", printable ASCII, no spaces (it goes into a request line). */
const urlPath = z
  .string()
  .max(2048)
  .regex(/^\/[\x21-\x7e]*$/, 'a URL path such as /predict (printable ASCII, no spaces)');
/**
 * A docker image reference as the engine takes it: [registry/]name[:tag][@digest], lowercase
 * name. Checked loosely here; the engine has the last word.
 */
const imageRef = z
  .string()
  .max(300)
  .regex(/^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64})?$/, 'a docker image reference such as my-org/my-model:1.0');

/** Placeholders of an http request template (whole string values only). */
export const HTTP_INPUT = '$input';
export const HTTP_INPUTS = '$inputs';
export const HTTP_PLACEHOLDERS = [HTTP_INPUT, HTTP_INPUTS, '$options', '$task'] as const;

/** Every placeholder a request template uses (a string value that is exactly one of them). */
export function templatePlaceholders(t: unknown, found = new Set<string>()): Set<string> {
  if (typeof t === 'string' && (HTTP_PLACEHOLDERS as readonly string[]).includes(t)) found.add(t);
  else if (Array.isArray(t)) for (const v of t) templatePlaceholders(v, found);
  else if (typeof t === 'object' && t !== null) for (const v of Object.values(t)) templatePlaceholders(v, found);
  return found;
}

/**
 * runtime http: a model that is an HTTP server (drivers/http.ts, worker/http-adapter.ts). Either
 * a command (`entry`) or an image (`image`, isolation docker); an adapter beside it, inside the
 * same isolation, speaks the worker protocol to the gateway and HTTP to the server on loopback.
 */
const httpSchema = z
  .object({
    /** The image the server runs from (isolation docker); without it, `entry` is its command line. */
    image: imageRef.optional(),
    /**
     * The port the server listens on, on loopback. Required with `image`. Absent for a command:
     * a free port is chosen per replica and given as {port} in `entry` and as $PORT.
     */
    port: z.number().int().min(1).max(65535).optional(),
    health_path: urlPath.default('/health'),
    predict_path: urlPath.default('/predict'),
    method: z.enum(['POST', 'PUT']).default('POST'),
    /**
     * The request body: a JSON template whose string values "$input" (the item's sequence or
     * input), "$options", "$task" and, with batch list, "$inputs" are replaced. Default: the input itself.
     */
    request: z.unknown().default(HTTP_INPUT),
    /** Dot path of the output in the server's JSON answer ("data", "data.predictions", "results.0"); "" = all of it. */
    response: z
      .string()
      .max(512)
      .regex(/^([A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*)?$/, 'a dot path such as data or data.predictions')
      .default(''),
    /** item: one request per batch item; list: one request with "$inputs", answered with a list of outputs. */
    batch: z.enum(['item', 'list']).default('item'),
    /** Bytes of one answer (list: of the whole answer); more is refused, with RESPONSE_TOO_LARGE. */
    max_response_bytes: z
      .number()
      .int()
      .min(1024)
      .max(32 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    /** From the start to a healthy answer (2xx from health_path); under the gateway's own 120 s for any worker. */
    startup_timeout_ms: z.number().int().min(100).max(115_000).default(60_000),
    /** How often an idle replica's server is health-checked (0: never; the server's exit is still seen). */
    health_interval_ms: z.number().int().min(0).max(3_600_000).default(5000),
    /** How long one health check may take. */
    health_timeout_ms: z.number().int().min(50).max(600_000).default(2000),
    /** Failed health checks in a row after which the replica is replaced. */
    unhealthy_after: z.number().int().min(1).max(100).default(3),
  })
  .strict();

type HttpManifestPart = {
  runtime: string;
  entry?: string | string[];
  isolation: string;
  http?: z.infer<typeof httpSchema>;
};

/** The combinations runtime http takes, each refused with what to do instead. */
function checkHttp(m: HttpManifestPart, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void =>
    ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  if (m.runtime !== 'http') {
    if (m.http) issue(['http'], 'only runtime "http" takes an http section');
    return;
  }
  const h = m.http;
  if (!h)
    return issue(['http'], 'runtime "http" needs an http section (health_path, predict_path, … and image or entry)');
  if (h.image !== undefined && m.entry !== undefined)
    issue(
      ['entry'],
      "give either http.image (the server is that image) or entry (the server's command line), not both",
    );
  if (h.image === undefined && m.entry === undefined)
    issue(['entry'], 'runtime "http" needs entry (the server\'s command line) or http.image');
  if (h.image !== undefined) {
    if (m.isolation !== 'docker') issue(['isolation'], 'http.image runs as a container: set isolation: docker');
    if (h.port === undefined)
      issue(['http', 'port'], "required with http.image: the port the image's server listens on");
  } else if (m.isolation === 'docker') {
    issue(
      ['http', 'image'],
      'isolation docker runs an http model from an image: set http.image, or use isolation process or sandbox for a command',
    );
  }
  const used = templatePlaceholders(h.request);
  if (h.batch === 'list' && !used.has(HTTP_INPUTS))
    issue(['http', 'request'], 'batch: list needs "$inputs" (the list of inputs) in the request template');
  else if (h.batch === 'list' && used.has(HTTP_INPUT))
    issue(['http', 'request'], '"$input" is one item\'s input: with batch: list, use "$inputs"');
  if (h.batch === 'item' && used.has(HTTP_INPUTS))
    issue(['http', 'request'], '"$inputs" is for batch: list; one item\'s input is "$input"');
}

const memory = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+(\.\d+)?\s*(k|m|g|kb|mb|gb|ki|mi|gi)?$/i, 'memory like "256MB", "1GB" or a number of MB')
    .transform(parseMemoryMb),
]);

export const manifestSchema = z
  .object({
    name: z.string().regex(MODEL_NAME_PATTERN, 'lowercase letters, digits, ".", "_" and "-", at most 64'),
    version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/, 'a version such as 1.0.0'),
    description: text.default(''),
    runtime: z.enum(['node', 'python', 'onnx', 'command', 'http']),
    /**
     * File relative to the package (node, python, onnx) or a command line (command; http: the
     * server's command line, absent when it comes from http.image).
     */
    entry: z.union([path.min(1), z.array(path.min(1)).min(1).max(256)]).optional(),
    /** runtime http: the HTTP server the model is, and how requests map onto it (docs/models.md). */
    http: httpSchema.optional(),
    tasks: z.array(taskSchema).min(1).max(MAX_TASKS),
    /** The task a request without task_type gets (default: the first). */
    default_task: z.string().max(64).optional(),
    /** sandbox: a process worker inside bubblewrap (drivers/sandbox.ts, docs/sandbox.md); docker: a container (drivers/docker.ts, docs/docker.md). */
    isolation: z.enum(['inline', 'process', 'sandbox', 'docker']).default('process'),
    /**
     * The network a process worker sees when the gateway runs as root (docs/security.md):
     * none (default): a network namespace of its own, with only its own loopback, so it cannot
     * reach the gateway's API or anything else; host: the machine's network (a model that
     * downloads at start). Sandbox and docker workers never have a network.
     */
    network: z.enum(['none', 'host']).default('none'),
    resources: z
      .object({
        memory_mb: memory.default(512),
        cpus: z.number().positive().max(256).default(1),
        timeout_ms: z.number().int().positive().max(3_600_000).default(30_000),
        /**
         * GPUs per replica: each replica is given its own devices (CUDA_VISIBLE_DEVICES, least-used
         * first); requested as nvidia.com/gpu on Kubernetes (docs/kubernetes.md).
         */
        gpus: z.number().int().min(0).max(64).default(0),
        /**
         * runtime onnx: onnxruntime execution providers in order of preference (default: cuda then
         * cpu when the replica has GPUs, else cpu). A provider this onnxruntime build or machine
         * cannot start is skipped for the next one, and the worker says so in its log.
         */
        execution_providers: z.array(z.enum(EXECUTION_PROVIDERS)).min(1).max(EXECUTION_PROVIDERS.length).optional(),
      })
      .strict()
      .default({}),
    batching: z
      .object({
        max_batch_size: z.number().int().min(1).max(4096).default(1),
        /**
         * The most a request waits for a fuller batch. Only with preferred_batch_size, and only
         * while more requests are on their way (recent concurrency above what is queued now):
         * otherwise an idle replica takes what is queued at once.
         */
        max_delay_ms: z.number().min(0).max(10_000).default(0),
        /** The batch size at which this model is efficient: an idle replica may wait (max_delay_ms) to reach it. */
        preferred_batch_size: z.number().int().min(1).max(4096).optional(),
        /**
         * Budget of one batch in tokens, padded: items x longest item, a token being one residue
         * of the sequence. Set for models whose cost grows with the padded length (transformers):
         * batches are then formed by length bucket. A single longer item still runs, alone.
         */
        max_batch_tokens: z.number().int().min(1).max(100_000_000).optional(),
        /** Queue time worth one priority level, so that low priorities are not starved (0: strict priority). */
        priority_aging_ms: z.number().int().min(0).max(3_600_000).default(1000),
      })
      .strict()
      .default({})
      .refine((b) => b.preferred_batch_size === undefined || b.preferred_batch_size <= b.max_batch_size, {
        message: 'preferred_batch_size must be <= max_batch_size',
      }),
    scaling: z
      .object({
        min_replicas: z.number().int().min(0).max(100).default(1),
        max_replicas: z.number().int().min(1).max(100).default(1),
        /** Seconds without traffic before replicas above min (or all, at min 0) stop. 0 = never. */
        idle_timeout_s: z.number().min(0).default(0),
        max_queue: z.number().int().min(1).max(1_000_000).default(1000),
      })
      .strict()
      .default({})
      .refine((s) => s.max_replicas >= s.min_replicas, { message: 'max_replicas must be >= min_replicas' }),
    /**
     * Requests each new replica answers before it takes traffic (JIT, caches, lazy weights), so
     * the first real request does not pay for them.
     */
    warmup: z
      .array(
        z
          .object({
            task: z.string().max(64).optional(),
            sequence: z.string().min(1).max(1_000_000),
            options: z.record(z.string(), z.unknown()).default({}),
          })
          .strict(),
      )
      .max(64)
      .default([]),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'variable names: letters, digits and "_", at most 128'),
        z.string().max(32_768),
      )
      .refine((e) => Object.keys(e).length <= MAX_ENV_VARS, { message: `at most ${MAX_ENV_VARS} variables` })
      .default({}),
    data_dir: path.default('data'),
    /**
     * Weights the package needs but does not ship (docs/model-management.md): `env` is the
     * variable that gives the model their folder; `isomodel pull --for <model>` downloads them
     * (from `source` unless another is given) and sets that variable for the model's workers.
     * Absent, the model is `needs_weights` rather than failed (src/manifest/weights.ts): no
     * alert, no error log, and the hint says what to do.
     */
    weights: z
      .object({
        env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'an environment variable name'),
        /** Default source of `isomodel pull --for`: `hf:<org>/<repo>[@revision]`, an http(s) URL or a path. */
        source: z.string().min(1).max(4096).optional(),
        /** Files the folder must hold once pulled (checked after the download). */
        required_files: z.array(z.string().min(1).max(1024)).max(64).default([]),
        /** For a person: what the weights are and how to get them where no pull source exists (an export tool). */
        note: text.default(''),
      })
      .strict()
      .optional(),
    /**
     * Host software the package uses but does not ship (src/manifest/requires.ts): commands on
     * PATH, files (`*` matches one path segment), Python modules of the manifest's `python`, and
     * the apt packages that provide them. Missing on a process or sandbox host, the model is
     * `needs_packages` rather than failed: no worker is started, no alert, the hint names the packages.
     */
    requires: z
      .object({
        commands: z
          .array(
            z
              .string()
              .min(1)
              .max(256)
              .regex(/^[^\s]+$/, 'a command name or absolute path'),
          )
          .max(32)
          .default([]),
        files: z
          .array(
            z
              .string()
              .min(2)
              .max(1024)
              .refine((f) => f.startsWith('/') && !f.split('/').includes('..'), 'an absolute path without ".."'),
          )
          .max(32)
          .default([]),
        python_modules: z
          .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, 'a dotted Python module name'))
          .max(32)
          .default([]),
        packages: z
          .array(z.string().regex(/^[a-z0-9][a-z0-9+.-]{0,99}$/, 'a Debian package name'))
          .max(32)
          .default([]),
        note: text.default(''),
      })
      .strict()
      .optional(),
    /** Load at gateway start. */
    autoload: z.boolean().default(true),
    /**
     * Counted by /health/ready. A model that needs weights an operator may not have mounted
     * (dnabert2, lucaone) sets false: it is still tried at start, but cannot hold readiness hostage.
     */
    required: z.boolean().default(true),
    /** runtime onnx: the JS module that turns items into input tensors and outputs into results. */
    pipeline: path.optional(),
    /** Interpreter override for runtime python (a venv path later). */
    python: path.optional(),
    /**
     * Per-model dependencies (src/envs, docs/environments.md). Absent: a venv is built from a
     * non-empty requirements.txt (node_modules from package.json dependencies) unless `python` is
     * set, which then runs as-is. An object always builds (from `python` when set); false never does.
     */
    environment: z
      .union([
        z.literal(false),
        z
          .object({
            requirements: path.min(1).default('requirements.txt'),
            /** Local wheel folder, relative to the package: pip --no-index --find-links. */
            wheels: path.min(1).optional(),
            system_site_packages: z.boolean().default(false),
          })
          .strict(),
      ])
      .optional(),
    /** Free-form metadata shown by /model/info (species, citation, …). */
    metadata: z.record(z.string(), z.unknown()).default({}),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.runtime !== 'command' && m.runtime !== 'http' && Array.isArray(m.entry)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['entry'],
        message: 'only runtimes "command" and "http" take an argument list',
      });
    }
    if (m.runtime !== 'http' && m.entry === undefined)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['entry'], message: 'required' });
    checkHttp(m, ctx);
    if (m.runtime === 'onnx' && !m.pipeline) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['pipeline'],
        message: 'runtime "onnx" needs a pipeline module (pre/post-processing)',
      });
    }
    if (m.network === 'host' && (m.isolation === 'sandbox' || m.isolation === 'docker')) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['network'],
        message: `network: host is only for isolation "process"; ${m.isolation} workers have no network`,
      });
    }
    if (m.resources.execution_providers && m.runtime !== 'onnx') {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['resources', 'execution_providers'],
        message: 'only runtime "onnx" uses execution providers',
      });
    }
    if (m.isolation === 'inline' && m.runtime !== 'node') {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['isolation'],
        message: 'inline isolation is only for runtime "node"',
      });
    }
    m.warmup.forEach((w, i) => {
      if (w.task !== undefined && !m.tasks.some((t) => t.name === w.task))
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['warmup', i, 'task'], message: `no task "${w.task}"` });
      if (w.task === undefined && m.tasks.length > 1)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['warmup', i, 'task'],
          message: 'required when the model has several tasks',
        });
    });
    if (m.default_task !== undefined && !m.tasks.some((t) => t.name === m.default_task)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['default_task'], message: `no task "${m.default_task}"` });
    }
    const seen = new Set<string>();
    m.tasks.forEach((t, i) => {
      if (seen.has(t.name))
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['tasks', i, 'name'],
          message: `duplicate task "${t.name}"`,
        });
      seen.add(t.name);
    });
  })
  // An http model served from an image has no entry: [] (never read for it).
  .transform((m) => ({ ...m, entry: m.entry ?? [] }));

export type Manifest = z.infer<typeof manifestSchema>;
export type TaskSpec = z.infer<typeof taskSchema>;

export function parseMemoryMb(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) throw new Error(`bad memory size ${text}`);
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b?$/, '');
  const factor = unit === 'k' ? 1 / 1024 : unit === 'g' ? 1024 : 1;
  return Math.max(1, Math.round(n * factor));
}
