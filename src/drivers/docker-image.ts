// Model images for isolation docker. The build context is the model package plus only the worker
// host / SDK files its runtime needs; the Dockerfile is deploy/docker/<runtime>.Dockerfile, built
// FROM a local base image (deploy/docker/make-base-image.sh: nothing can be pulled) and tagged
// isomodel/<model>:<version>. An image is reused while its digest label matches the package's
// fingerprint, the host files, the Dockerfile and the base image; otherwise it is rebuilt.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, posix } from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import type { Manifest } from '../manifest/schema.js';
import { DIST_DIR, PACKAGE_ROOT, PYTHON_SDK } from '../paths.js';

export const DOCKER_DIR = join(PACKAGE_ROOT, 'deploy', 'docker');
/** Where the package and the runtime files live inside a model image. */
export const IMAGE_MODEL_DIR = '/model';
export const IMAGE_RUNTIME_DIR = '/opt/isomodel';

export type ImageRuntime = 'node' | 'python' | 'onnx';

/**
 * The Dockerfile a runtime builds with; `command` models get the python image (it has sh and
 * python3); `http` models the node one, for their adapter (the server is http.image's container).
 */
export function imageRuntime(m: Manifest): ImageRuntime {
  return m.runtime === 'command' ? 'python' : m.runtime === 'http' ? 'node' : m.runtime;
}

/** Base image flavour (make-base-image.sh argument): onnx runs on the node base. */
export function baseFlavour(rt: ImageRuntime): 'node' | 'python' {
  return rt === 'python' ? 'python' : 'node';
}

export function baseImage(rt: ImageRuntime): string {
  return `isomodel/base:${baseFlavour(rt)}`;
}

/**
 * isomodel/<model>:<version>, squeezed into Docker's reference grammar: a name separator is
 * ".", "_", "__" or dashes (other runs become "-"), and a tag has no "+".
 */
export function imageTag(m: Manifest): string {
  const repo = m.name.replace(/[._-]+/g, (s) => (/^(\.|_|__|-+)$/.test(s) ? s : '-')).replace(/[._-]+$/, '');
  const tag = m.version.replace(/[^\w.-]/g, '_');
  return `isomodel/${repo}:${tag}`;
}

/** A path of the package as the container sees it. */
export function inImage(rel: string): string {
  return posix.join(IMAGE_MODEL_DIR, rel);
}

/** The worker's argv inside the container (the image's PATH finds node / python3). */
export function containerCommand(m: Manifest): string[] {
  const host = (f: string): string => posix.join(IMAGE_RUNTIME_DIR, 'dist', 'src', 'worker', f);
  switch (m.runtime) {
    case 'node':
      // Same heap cap as the process driver: a leaking model fails with a clear V8 message
      // before the kernel's OOM killer has to step in.
      return [
        'node',
        `--max-old-space-size=${Math.max(32, Math.floor(m.resources.memory_mb * 0.75))}`,
        host('node-host.js'),
        inImage(m.entry as string),
      ];
    case 'onnx':
      return ['node', host('onnx-host.js'), inImage(m.entry as string), inImage(m.pipeline!)];
    case 'python':
      return [
        'python3',
        '-u',
        posix.join(IMAGE_RUNTIME_DIR, 'sdk', 'python', 'isomodel_worker.py'),
        inImage(m.entry as string),
      ];
    case 'command':
      return (Array.isArray(m.entry) ? m.entry : ['/bin/sh', '-c', m.entry]).map((a) =>
        a.replaceAll('{model_dir}', IMAGE_MODEL_DIR),
      );
    case 'http':
      return ['node', host('http-adapter.js')];
  }
}

const WORKER_DIR = join(DIST_DIR, 'src', 'worker');
const ORT_DIR = join(PACKAGE_ROOT, 'node_modules', 'onnxruntime-node');
const ORT_COMMON_DIR = join(PACKAGE_ROOT, 'node_modules', 'onnxruntime-common');

/** Host files copied into the image, as [source, path in the context's isomodel/ dir]. */
function runtimeFiles(rt: ImageRuntime): [string, string][] {
  const out: [string, string][] = [];
  if (rt === 'python') out.push([PYTHON_SDK, join('sdk', 'python', 'isomodel_worker.py')]);
  else {
    // The hosts import only their neighbours (and onnxruntime-node): the worker dir is enough.
    for (const f of readdirSync(WORKER_DIR)
      .filter((f) => f.endsWith('.js'))
      .sort())
      out.push([join(WORKER_DIR, f), join('dist', 'src', 'worker', f)]);
  }
  return out;
}

/** onnxruntime-node without the other platforms' binaries (about 45 of its 290 MB). */
function copyOnnxRuntime(dest: string): void {
  const platform = join('bin', 'napi-v6', process.platform, process.arch);
  if (!existsSync(join(ORT_DIR, platform)))
    throw new IsoError(
      'MODEL_NOT_LOADED',
      `onnxruntime-node has no binaries for ${process.platform}/${process.arch} (${join(ORT_DIR, platform)})`,
    );
  const ort = join(dest, 'node_modules', 'onnxruntime-node');
  for (const part of ['package.json', 'dist', 'lib', platform])
    if (existsSync(join(ORT_DIR, part)))
      cpSync(join(ORT_DIR, part), join(ort, part), { recursive: true, dereference: true });
  cpSync(ORT_COMMON_DIR, join(dest, 'node_modules', 'onnxruntime-common'), { recursive: true, dereference: true });
}

function dockerfile(rt: ImageRuntime): string {
  return join(DOCKER_DIR, `${rt}.Dockerfile`);
}

/** What decides whether an existing image is still the right one. */
export function imageDigest(pkg: ModelPackage, baseId: string): string {
  const rt = imageRuntime(pkg.manifest);
  const h = createHash('sha256')
    .update('isomodel-image-1\0')
    .update(pkg.fingerprint)
    .update('\0')
    .update(baseId)
    .update('\0');
  h.update(readFileSync(dockerfile(rt)));
  for (const [src, dest] of runtimeFiles(rt)) h.update(dest).update('\0').update(readFileSync(src));
  if (rt === 'onnx') h.update(readFileSync(join(ORT_DIR, 'package.json')));
  return h.digest('hex').slice(0, 32);
}

/** Files the unprivileged container user must read: everything world-readable, dirs traversable. */
function makeReadable(path: string): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, st.mode | 0o555);
    for (const e of readdirSync(path)) makeReadable(join(path, e));
  } else chmodSync(path, st.mode | 0o444);
}

/** Writes the build context into dir: Dockerfile, model/ (the package), isomodel/ (host files). */
export function stageContext(pkg: ModelPackage, dir: string): void {
  const rt = imageRuntime(pkg.manifest);
  copyFileSync(dockerfile(rt), join(dir, 'Dockerfile'));
  // Symlinks are followed: an image cannot reach back into the host for shared weights.
  cpSync(pkg.dir, join(dir, 'model'), { recursive: true, dereference: true, filter: (src) => !src.endsWith('/.git') });
  const rtDir = join(dir, 'isomodel');
  mkdirSync(rtDir, { recursive: true });
  // Marks the host's .js files as ES modules, as isomodel's own package.json does.
  writeFileSync(
    join(rtDir, 'package.json'),
    JSON.stringify({ name: 'isomodel-worker-runtime', private: true, type: 'module' }) + '\n',
  );
  for (const [src, dest] of runtimeFiles(rt)) {
    mkdirSync(join(rtDir, dest, '..'), { recursive: true });
    copyFileSync(src, join(rtDir, dest));
  }
  if (rt === 'onnx') copyOnnxRuntime(rtDir);
  makeReadable(dir);
}

export interface ImageOptions {
  stateDir: string;
  logger: Logger;
  /** Build when missing or stale; false: only use what is there. */
  build: boolean;
  buildTimeoutMs: number;
}

const building = new Map<string, Promise<string>>();

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number }).statusCode;
}

/** Id of a local image, or null when the engine does not have it. */
async function localImage(engine: Docker, ref: string): Promise<Docker.ImageInspectInfo | null> {
  try {
    return await engine.getImage(ref).inspect();
  } catch (e) {
    if (statusOf(e) === 404) return null;
    throw new IsoError('MODEL_NOT_LOADED', `docker engine unreachable or failing: ${(e as Error).message}`);
  }
}

/**
 * The id of the model's image (tagged isomodel/<model>:<version>), built first when missing or
 * out of date. Replicas starting together share one build. Containers are created from the id,
 * never the tag: during a blue/green reload two builds of one tag can coexist, and each
 * deployment must run its own.
 */
export function ensureModelImage(engine: Docker, pkg: ModelPackage, opts: ImageOptions): Promise<string> {
  const key = `${imageTag(pkg.manifest)}\0${pkg.fingerprint}`;
  let p = building.get(key);
  if (!p) {
    p = ensure(engine, pkg, opts).finally(() => building.delete(key));
    building.set(key, p);
  }
  return p;
}

async function ensure(engine: Docker, pkg: ModelPackage, opts: ImageOptions): Promise<string> {
  const m = pkg.manifest;
  const rt = imageRuntime(m);
  const tag = imageTag(m);
  const base = baseImage(rt);
  const baseInfo = await localImage(engine, base);
  if (!baseInfo) {
    throw new IsoError(
      'MODEL_NOT_LOADED',
      `base image ${base} not found on the docker engine (base images are made locally, never pulled): run deploy/docker/make-base-image.sh ${baseFlavour(rt)}`,
    );
  }
  const digest = imageDigest(pkg, baseInfo.Id);
  const existing = await localImage(engine, tag);
  if (existing?.Config?.Labels?.['isomodel.digest'] === digest) return existing.Id;
  if (!opts.build)
    throw new IsoError(
      'MODEL_NOT_LOADED',
      `image ${tag} is ${existing ? 'out of date' : 'missing'} and docker.build is off`,
    );

  const buildRoot = join(opts.stateDir, 'docker-build');
  mkdirSync(buildRoot, { recursive: true });
  const dir = mkdtempSync(join(buildRoot, `${m.name}-`));
  const started = Date.now();
  let id: string;
  try {
    stageContext(pkg, dir);
    id = await buildImage(
      engine,
      dir,
      {
        t: tag,
        buildargs: { BASE: base, ENTRY: Array.isArray(m.entry) ? '' : m.entry, PIPELINE: m.pipeline ?? '' },
        labels: {
          'isomodel.model': m.name,
          'isomodel.version': m.version,
          'isomodel.runtime': m.runtime,
          'isomodel.digest': digest,
        },
        // Nothing in a model Dockerfile needs the network; a RUN step added later gets none either.
        networkmode: 'none',
        rm: true,
        forcerm: true,
      },
      opts.buildTimeoutMs,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  opts.logger.info({ model: m.name, image: tag, ms: Date.now() - started }, 'built model image');
  // The previous build of this tag is now untagged: drop it unless a container still uses it
  // (then the last of those containers drops it as it goes: drivers/docker.ts).
  if (existing)
    await engine
      .getImage(existing.Id)
      .remove()
      .catch(() => undefined);
  return id;
}

type BuildEvent = { error?: string; stream?: string; aux?: { ID?: string } };

/** Builds the staged context; resolves with the new image's id. */
async function buildImage(
  engine: Docker,
  dir: string,
  options: Record<string, unknown>,
  timeoutMs: number,
): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const stream = await engine.buildImage(
      { context: dir, src: readdirSync(dir) },
      { ...options, abortSignal: abort.signal },
    );
    const events = await new Promise<BuildEvent[]>((resolve, reject) => {
      engine.modem.followProgress(stream, (err: Error | null, out: BuildEvent[]) => (err ? reject(err) : resolve(out)));
    });
    const failed = events.find((e) => e.error);
    if (failed) {
      const tail = events
        .map((e) => e.stream ?? '')
        .join('')
        .trim()
        .split('\n')
        .slice(-5);
      throw new IsoError('MODEL_NOT_LOADED', `building image ${String(options.t)} failed: ${failed.error}`, {
        build_log_tail: tail,
      });
    }
    // The classic builder reports the id as aux.ID, older engines only as "Successfully built <id>".
    const id =
      events.find((e) => e.aux?.ID)?.aux?.ID ??
      /Successfully built ([0-9a-f]+)/.exec(events.map((e) => e.stream ?? '').join(''))?.[1];
    if (!id) throw new IsoError('MODEL_NOT_LOADED', `building image ${String(options.t)} reported no image id`);
    return id;
  } catch (e) {
    if (e instanceof IsoError) throw e;
    const msg = abort.signal.aborted ? `took longer than ${timeoutMs} ms` : (e as Error).message;
    throw new IsoError('MODEL_NOT_LOADED', `building image ${String(options.t)} failed: ${msg}`);
  } finally {
    clearTimeout(timer);
  }
}
