// The model.yaml contract. Every field a package can set is declared here, with defaults,
// so the rest of the runtime reads one normalised, fully-typed object.
import { z } from 'zod';

export const SEQUENCE_TYPES = ['DNA', 'RNA', 'protein'] as const;
export type SequenceType = (typeof SEQUENCE_TYPES)[number];

/** Model and task names end up in URLs and file paths: keep them to a safe alphabet. */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TASK_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

const sequenceType = z.preprocess(
  (v) => (typeof v === 'string' ? (SEQUENCE_TYPES.find((t) => t.toLowerCase() === v.toLowerCase()) ?? v) : v),
  z.enum(SEQUENCE_TYPES),
);

const ioDescription = z
  .object({
    type: z.string().default('object'),
    description: z.string().default(''),
    example: z.unknown().optional(),
    range: z.tuple([z.number(), z.number()]).optional(),
  })
  .passthrough();

export const taskSchema = z
  .object({
    name: z.string().regex(TASK_NAME_PATTERN, 'task names are lower_snake_case'),
    description: z.string().default(''),
    sequence_types: z.array(sequenceType).min(1),
    max_length: z.number().int().positive().max(1_000_000).default(5120),
    min_length: z.number().int().min(1).default(1),
    input: ioDescription.default({}),
    output: ioDescription.default({}),
    /** Options this task understands, described for clients (MCP schemas, docs). */
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

/** onnxruntime-node's execution provider names. */
export const EXECUTION_PROVIDERS = ['cuda', 'tensorrt', 'dml', 'coreml', 'webgpu', 'cpu'] as const;

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
    description: z.string().default(''),
    runtime: z.enum(['node', 'python', 'onnx', 'command']),
    /** File relative to the package (node, python, onnx) or a command line (command). */
    entry: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    tasks: z.array(taskSchema).min(1),
    /** sandbox: a process worker inside bubblewrap (drivers/sandbox.ts, docs/sandbox.md); docker: a container (drivers/docker.ts, docs/docker.md). */
    isolation: z.enum(['inline', 'process', 'sandbox', 'docker']).default('process'),
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
      .refine((b) => b.preferred_batch_size === undefined || b.preferred_batch_size <= b.max_batch_size, { message: 'preferred_batch_size must be <= max_batch_size' }),
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
      .array(z.object({ task: z.string().optional(), sequence: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }).strict())
      .max(64)
      .default([]),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    data_dir: z.string().default('data'),
    /** Load at gateway start. */
    autoload: z.boolean().default(true),
    /**
     * Counted by /health/ready. A model that needs weights an operator may not have mounted
     * (dnabert2, lucaone) sets false: it is still tried at start, but cannot hold readiness hostage.
     */
    required: z.boolean().default(true),
    /** runtime onnx: the JS module that turns items into input tensors and outputs into results. */
    pipeline: z.string().optional(),
    /** Interpreter override for runtime python (a venv path later). */
    python: z.string().optional(),
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
            requirements: z.string().min(1).default('requirements.txt'),
            /** Local wheel folder, relative to the package: pip --no-index --find-links. */
            wheels: z.string().min(1).optional(),
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
    if (m.runtime !== 'command' && Array.isArray(m.entry)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['entry'], message: 'only runtime "command" takes an argument list' });
    }
    if (m.runtime === 'onnx' && !m.pipeline) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['pipeline'], message: 'runtime "onnx" needs a pipeline module (pre/post-processing)' });
    }
    if (m.resources.execution_providers && m.runtime !== 'onnx') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['resources', 'execution_providers'], message: 'only runtime "onnx" uses execution providers' });
    }
    if (m.isolation === 'inline' && m.runtime !== 'node') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['isolation'], message: 'inline isolation is only for runtime "node"' });
    }
    m.warmup.forEach((w, i) => {
      if (w.task !== undefined && !m.tasks.some((t) => t.name === w.task)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['warmup', i, 'task'], message: `no task "${w.task}"` });
      if (w.task === undefined && m.tasks.length > 1) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['warmup', i, 'task'], message: 'required when the model has several tasks' });
    });
    const seen = new Set<string>();
    m.tasks.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tasks', i, 'name'], message: `duplicate task "${t.name}"` });
      seen.add(t.name);
    });
  });

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
