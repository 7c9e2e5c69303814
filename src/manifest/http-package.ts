// Seed 002's deploy and PUT bodies name a `docker_image` and no package: the image is an HTTP
// server, so isomodel writes a runtime-http package for it (model.yaml only, isolation docker)
// under <state_dir>/http-models/<model>/<version>/ and registers it like any other package.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { IsoError } from '../errors.js';
import { describeZod } from '../validation/zod-message.js';
import { MANIFEST_FILE } from './load.js';
import { manifestSchema, MODEL_NAME_PATTERN, type Manifest } from './schema.js';

/** What a deploy body says about an image-served model (the descriptive fields included). */
export interface HttpDeploySpec {
  model_id: string;
  version: string;
  docker_image: string;
  /** The manifest's http section without image (port, paths, request/response mapping, …). */
  http?: Record<string, unknown>;
  port?: number;
  tasks?: unknown[];
  name?: string;
  model_type?: string;
  framework?: string;
  resources?: { cpus?: number; memory_mb?: number };
  scaling?: Record<string, unknown>;
}

/** Seed 000's container contract, the default: POST /predict {sequence, task_type, options} → {data: …}. */
const DEFAULT_HTTP = {
  port: 8000,
  health_path: '/health',
  predict_path: '/predict',
  request: { sequence: '$input', task_type: '$task', options: '$options' },
  response: 'data',
};

export function httpPackagesDir(stateDir: string): string {
  return join(stateDir, 'http-models');
}

/** The manifest a deploy body describes, validated; `base` (PUT) supplies what the body leaves out. */
export function httpManifest(spec: HttpDeploySpec, base?: Manifest): Manifest {
  if (!MODEL_NAME_PATTERN.test(spec.model_id))
    throw new IsoError(
      'VALIDATION_ERROR',
      `model_id "${spec.model_id}": lowercase letters, digits, ".", "_" and "-", at most 64, to be served from docker_image`,
    );
  const taskName = spec.model_type && /^[a-z][a-z0-9_]{0,63}$/.test(spec.model_type) ? spec.model_type : 'predict';
  const baseHttp: Record<string, unknown> = base?.http ? { ...base.http } : { ...DEFAULT_HTTP };
  delete baseHttp.image;
  const raw = {
    name: spec.model_id,
    version: spec.version,
    description: spec.name ?? base?.description ?? `served from ${spec.docker_image}`,
    runtime: 'http',
    isolation: 'docker',
    http: { ...baseHttp, ...spec.http, ...(spec.port !== undefined && { port: spec.port }), image: spec.docker_image },
    tasks: spec.tasks ??
      base?.tasks.map((t) => ({
        name: t.name,
        description: t.description,
        input_type: t.input_type,
        ...(t.sequence_types.length && { sequence_types: t.sequence_types }),
        ...(t.input_type === 'json' && { schema: t.schema }),
      })) ?? [{ name: taskName, sequence_types: ['DNA', 'RNA', 'protein'] }],
    resources: {
      ...(base?.resources && {
        memory_mb: base.resources.memory_mb,
        cpus: base.resources.cpus,
        timeout_ms: base.resources.timeout_ms,
      }),
      ...spec.resources,
    },
    ...((spec.scaling ?? base?.scaling) && { scaling: { ...base?.scaling, ...spec.scaling } }),
    required: false,
    metadata: {
      ...base?.metadata,
      deployed_from: 'api',
      docker_image: spec.docker_image,
      ...(spec.model_type && { model_type: spec.model_type }),
      ...(spec.framework && { framework: spec.framework }),
    },
  };
  const r = manifestSchema.safeParse(raw);
  if (!r.success)
    throw new IsoError('VALIDATION_ERROR', `the model served from ${spec.docker_image}: ${describeZod(r.error)}`);
  return r.data;
}

/**
 * Writes the package (model.yaml) and returns its folder. A version already written with other
 * settings is refused: a version's package does not change under it (deploy a new version).
 */
export function writeHttpPackage(stateDir: string, m: Manifest): string {
  const dir = join(httpPackagesDir(stateDir), m.name, m.version);
  const text = toYaml({
    name: m.name,
    version: m.version,
    description: m.description,
    runtime: 'http',
    isolation: 'docker',
    http: m.http,
    tasks: m.tasks.map((t) => ({
      name: t.name,
      description: t.description,
      input_type: t.input_type,
      ...(t.sequence_types.length && { sequence_types: t.sequence_types }),
      ...(t.input_type === 'json' && { schema: t.schema }),
    })),
    resources: { memory_mb: m.resources.memory_mb, cpus: m.resources.cpus, timeout_ms: m.resources.timeout_ms },
    scaling: {
      min_replicas: m.scaling.min_replicas,
      max_replicas: m.scaling.max_replicas,
      idle_timeout_s: m.scaling.idle_timeout_s,
    },
    required: false,
    metadata: m.metadata,
  });
  const file = join(dir, MANIFEST_FILE);
  if (existsSync(file)) {
    if (readFileSync(file, 'utf8') === text) return dir;
    throw new IsoError(
      'CONFLICT',
      `${m.name}@${m.version} was deployed from an image with other settings; deploy a new version`,
    );
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  return dir;
}
