// `isomodel pull <source> [--for <model>]` and POST /api/models/download: fetch a model package
// into the models dir, or a model's weights into the weights dir (config pull.weights_dir, one
// folder per model). Sources: a local folder, a local .tar.gz/.tar, an http(s) URL of an archive,
// `hf:<org>/<repo>[@revision]`. Everything is unpacked into a staging folder first and moved into
// place only once complete and checked, so a failed pull leaves what was there before untouched.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  lstatSync,
  chmodSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { IsoError } from '../errors.js';
import { ManifestError, MANIFEST_FILE, loadPackage, isValidModelName } from '../manifest/load.js';
import type { Manifest } from '../manifest/schema.js';
import type { Config } from '../config/config.js';
import { copyFolder, extractArchive, type ExtractLimits } from './archive.js';
import { downloadTo } from './http.js';
import { downloadHubFiles, listHubFiles, parseHubSource } from './hub.js';

/** The marker a package installed by a pull carries: DELETE /api/models/{id} removes only such packages. */
export const PACKAGE_MARKER = '.isomodel-pulled.json';

/** The marker a pulled weights folder carries: where it came from. Its presence makes it count. */
export const WEIGHTS_MARKER = '.isomodel-weights.json';

export interface PullSettings {
  modelsDir: string;
  weightsDir: string;
  /** Staging and resumable partial downloads of packages (the work dir's `downloads`). */
  downloadsDir: string;
  hfEndpoint: string;
  hfToken?: string;
  maxBytes: number;
  maxFiles: number;
}

/** Where a gateway (or the CLI) with this configuration pulls to (config `pull`, models dir, work dir). */
export function pullSettings(c: Config): PullSettings {
  const workDir = c.work_dir ?? `${c.state_dir}-work`;
  return {
    modelsDir: c.models_dir,
    weightsDir: c.pull.weights_dir ?? join(workDir, 'weights'),
    downloadsDir: join(workDir, 'downloads'),
    hfEndpoint: c.pull.hf_endpoint,
    hfToken: c.pull.hf_token,
    maxBytes: c.pull.max_bytes,
    maxFiles: c.pull.max_files,
  };
}

export interface PullRequest {
  source: string;
  /** Fill this model's weights instead of installing a package. */
  forModel?: string;
  /** The package's manifest of `forModel` (what declares `weights`). */
  forManifest?: Manifest;
  /** The model name the package must have (POST /api/models/download's model_id). */
  expectName?: string;
  /** Replace a package or weights folder that is already there. */
  force?: boolean;
  /** Hub sources: only files matching these globs. */
  include?: string[];
  onProgress?: (p: { file: string; received: number; total: number }) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  kind: 'package' | 'weights';
  model: string;
  version?: string;
  path: string;
  source: string;
  files: number;
  bytes: number;
  /** The hub commit a revision resolved to. */
  commit?: string;
  /** Bytes that were already downloaded by an earlier, interrupted pull. */
  resumed_bytes?: number;
  /** For weights: the variable the model's workers get the folder in. */
  env?: string;
}

/** What pulled weights set in a model's worker environment: `{<weights.env>: <folder>}`, or nothing. */
export function pulledWeightsEnv(weightsDir: string, m: Manifest): Record<string, string> | undefined {
  if (!m.weights) return undefined;
  const dir = join(weightsDir, m.name);
  return existsSync(join(dir, WEIGHTS_MARKER)) ? { [m.weights.env]: dir } : undefined;
}

/** What a weights folder's marker says, or null when none was pulled. */
export function pulledWeightsInfo(weightsDir: string, model: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(weightsDir, model, WEIGHTS_MARKER), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

const ARCHIVE = /\.(tar\.gz|tgz|tar)$/i;

/**
 * One pull at a time per target (model package or weights folder), across processes: a lock
 * file beside the staging folders, taken over when the process that holds it is gone.
 */
function lock(dir: string, key: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${key}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8'));
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = pid > 0;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive && pid !== process.pid)
        throw new IsoError('CONFLICT', `another pull of ${key} is in progress (process ${pid})`);
      if (alive) throw new IsoError('CONFLICT', `a pull of ${key} is already in progress`);
      rmSync(file, { force: true });
    }
  }
  throw new IsoError('CONFLICT', `could not take the pull lock for ${key}`);
}

/** Moves a folder into place; across file systems, by copying (symbolic links kept as they are). */
function moveFolder(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    cpSync(from, to, { recursive: true, verbatimSymlinks: true, errorOnExist: true, force: false });
    rmSync(from, { recursive: true, force: true });
  }
}

/** Puts `staged` at `target`, replacing what is there only with `force`; the old one goes last. */
function install(staged: string, target: string, force: boolean, what: string): void {
  if (existsSync(target)) {
    if (!force)
      throw new IsoError('CONFLICT', `${what} already exists at ${target}; pull with force (--force) to replace it`);
    const aside = `${target}.old-${randomBytes(4).toString('hex')}`;
    renameSync(target, aside);
    try {
      moveFolder(staged, target);
    } catch (e) {
      renameSync(aside, target);
      throw e;
    }
    rmSync(aside, { recursive: true, force: true });
    return;
  }
  moveFolder(staged, target);
}

/** The folder holding model.yaml (or a seed-004 main.py): the top, or its single sub-folder. */
function packageRoot(dir: string): string {
  const isPkg = (d: string): boolean => existsSync(join(d, MANIFEST_FILE)) || existsSync(join(d, 'main.py'));
  if (isPkg(dir)) return dir;
  const subs = readdirSync(dir).filter((n) => !n.startsWith('.') && lstatSync(join(dir, n)).isDirectory());
  if (subs.length === 1 && isPkg(join(dir, subs[0]!))) return join(dir, subs[0]!);
  throw new IsoError(
    'VALIDATION_ERROR',
    `the source holds no model package: no ${MANIFEST_FILE} at its top or in its single folder`,
  );
}

/** Fetches the source's files into `stage` (empty). Returns counts and, for the hub, the commit. */
async function fetchInto(
  req: PullRequest,
  s: PullSettings,
  stage: string,
  partial: string,
): Promise<{ files: number; bytes: number; commit?: string; resumed?: number }> {
  const limits: ExtractLimits = { maxBytes: s.maxBytes, maxEntries: s.maxFiles };
  const hub = parseHubSource(req.source);
  if (hub) {
    const hubOpts = {
      endpoint: s.hfEndpoint,
      token: s.hfToken,
      maxBytes: s.maxBytes,
      maxFiles: s.maxFiles,
      include: req.include,
      onProgress: req.onProgress,
      signal: req.signal,
    };
    const { commit, files } = await listHubFiles(hub, hubOpts);
    const { bytes, resumed } = await downloadHubFiles(hub, commit, files, stage, partial, hubOpts);
    return { files: files.length, bytes, commit, resumed };
  }
  if (/^https?:\/\//i.test(req.source)) {
    const file = join(partial, `download-${randomBytes(6).toString('hex')}`);
    mkdirSync(partial, { recursive: true, mode: 0o700 });
    try {
      await downloadTo(req.source, file, s.maxBytes, req.signal);
      return await extractArchive(file, stage, limits);
    } finally {
      rmSync(file, { force: true });
    }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(req.source) && !req.source.startsWith('/')) {
    throw new IsoError(
      'INVALID_REQUEST',
      `unknown source ${JSON.stringify(req.source.slice(0, 200))}: give a folder, a .tar.gz, an http(s) URL or hf:<org>/<repo>[@revision]`,
    );
  }
  const path = resolve(req.source);
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new IsoError('NOT_FOUND', `no file or folder at ${path}`);
  }
  if (st.isDirectory()) return copyFolder(path, stage, limits);
  if (st.isFile() && ARCHIVE.test(path)) {
    if (st.size > s.maxBytes)
      throw new IsoError('UNSAFE_ARCHIVE', `${basename(path)} is larger than ${s.maxBytes} bytes`);
    return extractArchive(path, stage, limits);
  }
  throw new IsoError('INVALID_REQUEST', `${path} is neither a folder nor a .tar.gz / .tgz / .tar archive`);
}

export async function pull(req: PullRequest, s: PullSettings): Promise<PullResult> {
  if (req.forModel !== undefined) return pullWeights(req, s);
  return pullPackage(req, s);
}

async function pullWeights(req: PullRequest, s: PullSettings): Promise<PullResult> {
  const model = req.forModel!;
  const m = req.forManifest;
  if (!m) throw new IsoError('MODEL_NOT_FOUND', `no model ${model} in the models dir: pull its package first`);
  if (!m.weights)
    throw new IsoError(
      'VALIDATION_ERROR',
      `model ${model} declares no weights (its ${MANIFEST_FILE} has no weights.env), so there is no weights path to fill`,
    );
  mkdirSync(s.weightsDir, { recursive: true, mode: 0o755 });
  const work = join(s.weightsDir, '.pull');
  const unlock = lock(work, `weights-${model}`);
  const stage = join(s.weightsDir, `.staging-${model}-${randomBytes(4).toString('hex')}`);
  mkdirSync(stage, { mode: 0o755 });
  try {
    const got = await fetchInto(req, s, stage, join(work, 'partial', model));
    const missing = m.weights.required_files.filter((f) => !existsSync(join(stage, f)));
    if (missing.length)
      throw new IsoError(
        'VALIDATION_ERROR',
        `the source has no ${missing.join(', ')}, which ${model} needs (weights.required_files)`,
        { missing },
      );
    const info = {
      model,
      source: req.source,
      commit: got.commit ?? null,
      files: got.files,
      bytes: got.bytes,
      pulled_at: new Date().toISOString(),
    };
    rmSync(join(stage, WEIGHTS_MARKER), { force: true });
    writeFileSync(join(stage, WEIGHTS_MARKER), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });
    chmodSync(stage, 0o755);
    const target = join(s.weightsDir, model);
    // Weights are replaced by a new pull without --force: filling them again is what pull is for.
    install(stage, target, true, `weights of ${model}`);
    return {
      kind: 'weights',
      model,
      path: target,
      source: req.source,
      files: got.files,
      bytes: got.bytes,
      env: m.weights.env,
      ...(got.commit && { commit: got.commit }),
      ...(got.resumed && { resumed_bytes: got.resumed }),
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
    unlock();
  }
}

async function pullPackage(req: PullRequest, s: PullSettings): Promise<PullResult> {
  mkdirSync(s.downloadsDir, { recursive: true, mode: 0o700 });
  const key = req.expectName ?? `source-${Buffer.from(req.source).toString('hex').slice(0, 32)}`;
  const unlock = lock(s.downloadsDir, `package-${key}`);
  const stage = join(s.downloadsDir, `.staging-${randomBytes(6).toString('hex')}`);
  mkdirSync(stage, { mode: 0o755 });
  try {
    const got = await fetchInto(req, s, stage, join(s.downloadsDir, 'partial'));
    const root = packageRoot(stage);
    let pkg;
    try {
      pkg = loadPackage(root);
    } catch (e) {
      const issues = (e as ManifestError).issues;
      throw new IsoError(
        'VALIDATION_ERROR',
        `the source is not a valid model package: ${(e as Error).message.replace(stage, '<package>')}`,
        issues ? { issues } : undefined,
      );
    }
    const { name, version } = pkg.manifest;
    if (req.expectName !== undefined && name !== req.expectName)
      throw new IsoError('VALIDATION_ERROR', `the source is model "${name}", not "${req.expectName}"`);
    if (!isValidModelName(name)) throw new IsoError('VALIDATION_ERROR', `invalid model name ${JSON.stringify(name)}`);
    chmodSync(root, 0o755);
    rmSync(join(root, PACKAGE_MARKER), { force: true });
    writeFileSync(
      join(root, PACKAGE_MARKER),
      `${JSON.stringify({ model: name, version, source: req.source, commit: got.commit ?? null, pulled_at: new Date().toISOString() }, null, 2)}\n`,
      { mode: 0o644 },
    );
    const target = join(s.modelsDir, name);
    install(root, target, req.force ?? false, `a package of model ${name}`);
    return {
      kind: 'package',
      model: name,
      version,
      path: target,
      source: req.source,
      files: got.files,
      bytes: got.bytes,
      ...(got.commit && { commit: got.commit }),
      ...(got.resumed && { resumed_bytes: got.resumed }),
    };
  } finally {
    rmSync(stage, { recursive: true, force: true });
    unlock();
  }
}
