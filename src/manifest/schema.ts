// The model.yaml contract. Every field a package can set is declared here, with defaults,
// so the rest of the runtime reads one normalised, fully-typed object.
import { z } from 'zod';
import { checkHttp, httpSchema } from './http-schema.js';
import { MAX_ENV_VARS, MAX_TASKS, MODEL_NAME_PATTERN, path, text } from './schema-fields.js';
import { taskSchema } from './task-schema.js';

// Parts of the contract live beside it (task-schema.ts, http-schema.ts, schema-fields.ts); their
// names are re-exported here for the modules that import them from schema.ts.
export { MAX_TASKS, MODEL_NAME_PATTERN, SEQUENCE_TYPES, type SequenceType } from './schema-fields.js';
export { INPUT_TYPES, taskSchema, type InputType, type TaskSpec } from './task-schema.js';
export { HTTP_INPUT, HTTP_INPUTS, HTTP_PLACEHOLDERS, templatePlaceholders } from './http-schema.js';

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

export function parseMemoryMb(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) throw new Error(`bad memory size ${text}`);
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b?$/, '');
  const factor = unit === 'k' ? 1 / 1024 : unit === 'g' ? 1024 : 1;
  return Math.max(1, Math.round(n * factor));
}
