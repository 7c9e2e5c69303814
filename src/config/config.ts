// Gateway configuration: defaults < config file < .env < environment < explicit overrides.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { config as loadDotenv } from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { versionPolicySchema } from '../scheduler/versions.js';
import { DEFAULT_WORKER_LOG_LIMITS } from '../worker/log-limiter.js';

/** A count or size in the configuration: a whole number above zero (strings from the environment coerced). */
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const configSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(8000),
    models_dir: z.string().default('models'),
    state_dir: z.string().default('.isomodel'),
    /**
     * `postgres://user:pass@host:5432/db`: keys, audit, traffic splits and jobs live in this
     * PostgreSQL database, shared by every gateway given the same URL (docs/scale-out.md). Absent:
     * all state stays in the SQLite file under state_dir.
     */
    database_url: z
      .string()
      .regex(
        /^postgres(ql)?:\/\//,
        'database_url must be a postgres:// or postgresql:// URL (leave it out to keep the state in SQLite)',
      )
      .optional(),
    /**
     * What workers must reach, kept out of the state dir (which is 0700, the gateway's only):
     * replica scratch dirs and per-model envs. Default: `<state_dir>-work`, beside it
     * (drivers/workspace.ts, docs/security.md).
     */
    work_dir: z.string().optional(),
    /**
     * When the gateway runs as root, process and sandbox workers run as this user (a name from
     * /etc/passwd or uid[:gid]), with no supplementary groups and no_new_privs. Never root.
     */
    worker_user: z.string().min(1).default('nobody'),
    /**
     * The only models allowed `isolation: inline` (their code runs inside the gateway, with its
     * rights); any other inline model is refused at load.
     */
    inline_models: z.array(z.string()).default([]),
    /**
     * The only models allowed `network: host` in their manifest (a process worker then shares the
     * machine's network and can reach the gateway's API); any other is refused at load.
     */
    host_network_models: z.array(z.string()).default([]),
    /** Model answering the root routes (/predict, /model/info, …); else the first by name. */
    default_model: z.string().optional(),
    /** Models /health/ready waits for; default: every model with autoload. */
    required_models: z.array(z.string()).optional(),
    python: z.string().default('python3'),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** auto: readable lines (and a start-up table) on a terminal, JSON lines otherwise. */
    log_format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    /** Seed 002's ai_model_* metric names beside isomodel_* in /metrics/prometheus (docs/monitoring.md). */
    prometheus_ai_model_names: z.boolean().default(true),
    body_limit_bytes: positiveInt(2 * 1024 * 1024),
    /**
     * Bodies of prediction routes (native predict, OIP infer, deployment inference): images and
     * audio travel in them (base64 JSON, raw bytes, multipart). Each task's max_bytes still applies.
     */
    predict_body_limit_bytes: positiveInt(16 * 1024 * 1024),
    max_batch_sequences: positiveInt(100),
    rate_limit: z
      .object({
        max: z.coerce.number().int().min(0).default(100),
        window_ms: positiveInt(60_000),
      })
      .default({}),
    /** Watch the models dir and hot-reload changed packages. */
    watch: z.coerce.boolean().default(true),
    /**
     * Per-model environment set by the operator (e.g. where weights are mounted), merged over
     * the manifest's env: workers never inherit the gateway's own environment.
     */
    model_env: z.record(z.string(), z.record(z.string(), z.string())).default({}),
    /**
     * Which discovered versions of a model load by themselves, per model name ("*": every model):
     * {latest: n} (default {latest: 1}), {specific: [versions]} or {all: true}. Versions loaded
     * through the API, promoted or given traffic stay loaded whatever the policy says.
     */
    version_policy: z.record(z.string(), versionPolicySchema).default({}),
    /**
     * What one replica's stderr may put in the gateway's log (src/worker/log-limiter.ts): lines
     * per second with a burst, the longest line (also all that is held while a line has no
     * newline). Lines over the rate are dropped, counted (isomodel_worker_log_dropped_total) and
     * reported in one log line per report interval.
     */
    worker_log: z
      .object({
        lines_per_second: z.coerce
          .number()
          .positive()
          .max(1_000_000)
          .default(DEFAULT_WORKER_LOG_LIMITS.lines_per_second),
        burst: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_WORKER_LOG_LIMITS.burst),
        max_line_chars: z.coerce
          .number()
          .int()
          .min(80)
          .max(1_048_576)
          .default(DEFAULT_WORKER_LOG_LIMITS.max_line_chars),
        report_interval_ms: z.coerce.number().int().min(10).default(DEFAULT_WORKER_LOG_LIMITS.report_interval_ms),
      })
      .strict()
      .default({}),
    /**
     * `isomodel pull` and POST /api/models/download (src/pull, docs/model-management.md): where
     * pulled weights go, the hub, and what one pull may write.
     */
    pull: z
      .object({
        /** Pulled weights, one folder per model; default `<work_dir>/weights` (workers must read them). */
        weights_dir: z.string().optional(),
        /** The Hugging Face Hub (or a mirror) that `hf:` sources come from; env HF_ENDPOINT. */
        hf_endpoint: z.string().default('https://huggingface.co'),
        /** Bearer token for gated or private repositories; env HF_TOKEN. Sent to hf_endpoint's origin only. */
        hf_token: z.string().optional(),
        /** Most bytes one pull may write (downloaded or unpacked). */
        max_bytes: positiveInt(64 * 1024 ** 3),
        /** Most files (archive entries) one pull may write. */
        max_files: positiveInt(100_000),
      })
      .strict()
      .default({}),
    /**
     * Per-replica log files (telemetry/replica-logs.ts): every stderr line of every replica, in
     * `<dir>/<model>/<replica>.log`, rotated past max_file_bytes (keep rotated files per replica),
     * a model's folder held under max_model_bytes. Read by GET /v1/models/{name}/logs, `isomodel logs`.
     */
    log_files: z
      .object({
        enabled: z.coerce.boolean().default(true),
        /** Default `<state_dir>/logs`. */
        dir: z.string().optional(),
        max_file_bytes: z.coerce
          .number()
          .int()
          .min(1024)
          .default(10 * 1024 * 1024),
        keep: z.coerce.number().int().min(0).max(100).default(3),
        max_model_bytes: z.coerce
          .number()
          .int()
          .min(1024)
          .default(256 * 1024 * 1024),
      })
      .strict()
      .default({}),
    /** Use cgroups for memory/CPU limits when the hierarchy is writable. */
    cgroups: z.coerce.boolean().default(true),
    /** isolation: docker (src/drivers/docker.ts, docs/docker.md): the engine workers run on. */
    docker: z
      .object({
        /** The engine's unix socket. */
        socket: z.string().default('/var/run/docker.sock'),
        /** Build a model's image (isomodel/<model>:<version>) on first use when missing or out of date. */
        build: z.coerce.boolean().default(true),
        build_timeout_s: positiveInt(600),
      })
      .strict()
      .default({}),
    /**
     * API keys (docs/security.md). With no key configured anywhere, auth is off — allowed only
     * on a loopback address. Keys here carry a SHA-256 digest, never the secret.
     */
    auth: z
      .object({
        keys: z
          .array(
            z
              .object({
                name: z.string().min(1).max(64),
                sha256: z.string().regex(/^[0-9a-f]{64}$/, 'hex SHA-256 of the key'),
                scopes: z.array(z.enum(['predict', 'admin'])).min(1),
                rate_limit: z.coerce.number().int().positive().optional(),
              })
              .strict(),
          )
          .default([]),
        /** Serve /metrics/prometheus without a key (scrapers inside the cluster). */
        public_metrics: z.coerce.boolean().default(true),
        /**
         * Failed authentications (missing or unknown key) allowed per client address and window,
         * counted before any key lookup; past it: 429 with Retry-After. max 0 turns it off.
         */
        failure_limit: z
          .object({
            max: z.coerce.number().int().min(0).default(20),
            window_ms: positiveInt(60_000),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    /**
     * How long the append-only logs in SQLite keep rows: by age (days; 0 = any age) and by count
     * (the newest rows; 0 = no limit). Pruned at start and every interval_ms.
     */
    retention: z
      .object({
        audit_days: z.coerce.number().min(0).default(90),
        audit_max_rows: z.coerce.number().int().min(0).default(1_000_000),
        request_log_days: z.coerce.number().min(0).default(30),
        request_log_max_rows: z.coerce.number().int().min(0).default(2_000_000),
        /** Finished jobs (their records and results) are deleted this many days after they ended; 0 keeps them. */
        jobs_days: z.coerce.number().min(0).default(30),
        interval_ms: z.coerce.number().int().min(1000).default(600_000),
      })
      .strict()
      .default({}),
    /** HTTPS: both paths, or neither. */
    tls: z.object({ cert: z.string(), key: z.string() }).strict().optional(),
    /** Per-model environments (src/envs, docs/environments.md): venvs and node_modules built per package. */
    envs: z
      .object({
        enabled: z.coerce.boolean().default(true),
        /** pip --index-url for requirements (used when no wheel folder is set). */
        index_url: z.string().optional(),
        /** Local wheel folder (pip --no-index --find-links), relative to the working directory. */
        wheel_dir: z.string().optional(),
        build_timeout_s: positiveInt(1800),
      })
      .strict()
      .default({}),
    /** Batch jobs (docs/jobs.md): what one submission and one API key may hold. */
    jobs: z
      .object({
        /** Largest job submission (raw upload or JSON body), in bytes; over it: 413 PAYLOAD_TOO_LARGE. */
        max_upload_bytes: positiveInt(64 * 1024 * 1024),
        /** Unfinished (queued or running) jobs one API key may have; over it: 429 QUOTA_EXCEEDED. */
        max_queued_jobs_per_key: positiveInt(32),
        /** Records without a result yet, over all unfinished jobs of one API key; over it: 429 QUOTA_EXCEEDED. */
        max_queued_records_per_key: positiveInt(2_000_000),
      })
      .strict()
      .default({}),
    /** Worker monitoring, alerts, restart policy and performance snapshots (docs/monitoring.md). */
    monitor: z
      .object({
        enabled: z.coerce.boolean().default(true),
        interval_ms: z.coerce.number().int().min(50).default(5000),
        /** cpu: % of the model's `resources.cpus`; memory: % of its `memory_mb`; disk: % of the state dir's filesystem. */
        thresholds: z
          .object({
            cpu_percent: z.coerce.number().positive().default(80),
            memory_percent: z.coerce.number().positive().default(90),
            disk_percent: z.coerce.number().positive().max(100).default(85),
          })
          .strict()
          .default({}),
        /** Consecutive samples over a threshold before its alert fires. */
        alert_after_samples: positiveInt(2),
        /** Replace a replica that stays over its memory threshold for restart_after_samples samples. */
        restart_unhealthy: z.coerce.boolean().default(true),
        restart_after_samples: positiveInt(3),
        webhook_url: z.string().url().optional(),
        webhook_retries: z.coerce.number().int().min(0).max(20).default(4),
        webhook_backoff_ms: z.coerce.number().int().min(0).default(1000),
        retention_hours: z.coerce.number().positive().default(24),
        perf_interval_ms: z.coerce.number().int().min(50).default(60_000),
        perf_retention_days: z.coerce.number().positive().default(30),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

const ENV_MAP: Record<string, (c: Record<string, unknown>, v: string) => void> = {
  // Generic names first so the ISOMODEL_ ones win. HOST is not read: shells set it to the hostname.
  PORT: (c, v) => (c.port = v),
  ISOMODEL_HOST: (c, v) => (c.host = v),
  ISOMODEL_PORT: (c, v) => (c.port = v),
  MODELS_DIR: (c, v) => (c.models_dir = v),
  ISOMODEL_MODELS_DIR: (c, v) => (c.models_dir = v),
  ISOMODEL_STATE_DIR: (c, v) => (c.state_dir = v),
  ISOMODEL_DATABASE_URL: (c, v) => (c.database_url = v),
  ISOMODEL_WORK_DIR: (c, v) => (c.work_dir = v),
  ISOMODEL_WORKER_USER: (c, v) => (c.worker_user = v),
  ISOMODEL_INLINE_MODELS: (c, v) =>
    (c.inline_models = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)),
  ISOMODEL_HOST_NETWORK_MODELS: (c, v) =>
    (c.host_network_models = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)),
  ISOMODEL_DEFAULT_MODEL: (c, v) => (c.default_model = v),
  ISOMODEL_PYTHON: (c, v) => (c.python = v),
  ISOMODEL_LOG_LEVEL: (c, v) => (c.log_level = v),
  ISOMODEL_LOG_FORMAT: (c, v) => (c.log_format = v),
  ISOMODEL_RATE_LIMIT: (c, v) => (c.rate_limit = { ...(c.rate_limit as object), max: v }),
  ISOMODEL_WATCH: (c, v) => (c.watch = v !== '0' && v !== 'false'),
  ISOMODEL_DOCKER_SOCKET: (c, v) => (c.docker = { ...(c.docker as object), socket: v }),
  HF_ENDPOINT: (c, v) => (c.pull = { ...(c.pull as object), hf_endpoint: v }),
  HF_TOKEN: (c, v) => (c.pull = { ...(c.pull as object), hf_token: v }),
};

export interface LoadConfigOptions {
  cwd?: string;
  configFile?: string;
  overrides?: ConfigInput;
  env?: NodeJS.ProcessEnv;
}

/** Resolves relative paths against cwd so workers started elsewhere still find them. */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  const env = { ...(opts.env ?? process.env) };
  const dotenvPath = resolve(cwd, '.env');
  if (!opts.env && existsSync(dotenvPath)) {
    const parsed = loadDotenv({ path: dotenvPath, processEnv: {}, quiet: true }).parsed ?? {};
    for (const [k, v] of Object.entries(parsed)) if (env[k] === undefined) env[k] = v;
  }
  const file = opts.configFile ?? env.ISOMODEL_CONFIG ?? resolve(cwd, 'isomodel.config.yaml');
  let raw: Record<string, unknown> = {};
  if (existsSync(file)) raw = (parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>) ?? {};
  else if (opts.configFile) throw new Error(`config file ${file} not found`);
  for (const [key, apply] of Object.entries(ENV_MAP)) {
    const v = env[key];
    if (v !== undefined && v !== '') apply(raw, v);
  }
  Object.assign(raw, opts.overrides ?? {});
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      `invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const c = parsed.data;
  const stateDir = resolve(cwd, c.state_dir);
  const workDir = c.work_dir ? resolve(cwd, c.work_dir) : `${stateDir}-work`;
  const pull = {
    ...c.pull,
    weights_dir: c.pull.weights_dir ? resolve(cwd, c.pull.weights_dir) : resolve(workDir, 'weights'),
  };
  const log_files = {
    ...c.log_files,
    dir: c.log_files.dir ? resolve(cwd, c.log_files.dir) : resolve(stateDir, 'logs'),
  };
  return { ...c, models_dir: resolve(cwd, c.models_dir), state_dir: stateDir, work_dir: workDir, pull, log_files };
}
