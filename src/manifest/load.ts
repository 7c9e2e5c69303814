// Finds model packages in a models directory and validates their manifests.
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ZodError } from 'zod';
import {
  ANYTHING_ADAPTER,
  ANYTHING_CONFIG,
  ANYTHING_MAIN,
  ANYTHING_SKIP_DIRS,
  directoryManifest,
  DirectoryModelProblem,
  MAX_CONFIG_BYTES,
  MAX_MAIN_SCAN_BYTES,
} from './anything.js';
import { manifestSchema, MODEL_NAME_PATTERN, type Manifest } from './schema.js';

export const MANIFEST_FILE = 'model.yaml';

// What a package controls at load is bounded: every reload reads each model.yaml and walks each
// package. A 20 MB model.yaml stalled a reload 4.3 s and left the gateway 640 MB bigger.
/** The largest model.yaml read (the built-in ones are under 11 KB); a larger one is refused unread. */
export const MAX_MANIFEST_BYTES = 256 * 1024;
/**
 * What a manifest may hold once parsed, YAML aliases expanded: values plus characters of keys
 * and strings. A few kilobytes of anchors and aliases otherwise expand to megabytes.
 */
export const MAX_MANIFEST_UNITS = 1_000_000;
/** Files a package may hold (all of them are stat'ed for its fingerprint at every reload). */
export const MAX_PACKAGE_FILES = 100_000;

export interface ModelPackage {
  manifest: Manifest;
  /** Absolute package directory. */
  dir: string;
  /** Changes whenever any file of the package changes: drives hot reload. */
  fingerprint: string;
}

export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    super(`${file}: ${issues.join('; ')}`);
    this.name = 'ManifestError';
  }
}

function formatZod(err: ZodError): string[] {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/** Whether a parsed value holds more than `budget` units (one per value, one per key or string character); stops counting there. */
export function exceedsUnits(value: unknown, budget: number): boolean {
  let left = budget;
  const visit = (v: unknown): boolean => {
    left -= 1 + (typeof v === 'string' ? v.length : 0);
    if (left < 0) return true;
    if (typeof v !== 'object' || v === null) return false;
    if (Array.isArray(v)) return v.some(visit);
    for (const [k, x] of Object.entries(v)) {
      left -= k.length;
      if (left < 0 || visit(x)) return true;
    }
    return false;
  };
  return visit(value);
}

/**
 * Where a parsed value has a key named "__proto__" (the YAML parser keeps it as an own key;
 * validation would silently drop it, and with it whatever it named), as a dotted path.
 */
export function protoKeyPath(value: unknown, at: string[] = []): string | null {
  if (typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = protoKeyPath(value[i], [...at, String(i)]);
      if (p) return p;
    }
    return null;
  }
  if (Object.hasOwn(value, '__proto__')) return [...at, '__proto__'].join('.');
  for (const [k, v] of Object.entries(value)) {
    const p = protoKeyPath(v, [...at, k]);
    if (p) return p;
  }
  return null;
}

export function parseManifest(text: string, file: string): Manifest {
  if (text.length > MAX_MANIFEST_BYTES)
    throw new ManifestError(file, [`${MANIFEST_FILE} is larger than ${MAX_MANIFEST_BYTES} bytes`]);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ManifestError(file, [`not valid YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  if (exceedsUnits(raw, MAX_MANIFEST_UNITS)) {
    throw new ManifestError(file, [
      `(root): the manifest expands to more than ${MAX_MANIFEST_UNITS} values and characters (YAML aliases included)`,
    ]);
  }
  const proto = protoKeyPath(raw);
  if (proto) throw new ManifestError(file, [`${proto}: "__proto__" cannot be a key`]);
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new ManifestError(file, formatZod(parsed.error));
  return parsed.data;
}

const SKIP_DIRS = new Set(['node_modules', '__pycache__', '.venv', '.git']);

/**
 * Cheap content identity: every file's relative path, size and mtime (at most `maxFiles`
 * entries). `skipTop`: folders of the package's top level that are not part of it.
 */
export function fingerprintDir(dir: string, maxFiles = MAX_PACKAGE_FILES, skipTop: readonly string[] = []): string {
  const h = createHash('sha256');
  let seen = 0;
  const walk = (d: string, rel: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (SKIP_DIRS.has(entry.name) || (rel === '' && entry.isDirectory() && skipTop.includes(entry.name))) continue;
      if (++seen > maxFiles)
        throw new Error(
          `the package holds more than ${maxFiles} files and folders (node_modules, __pycache__, .venv and .git not counted)`,
        );
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p, `${rel}${entry.name}/`);
      else if (entry.isFile()) {
        const s = statSync(p);
        h.update(`${rel}${entry.name}\0${s.size}\0${s.mtimeMs}\n`);
      }
    }
  };
  walk(dir, '');
  return h.digest('hex').slice(0, 16);
}

/**
 * A package file's text, its size checked before anything is read. Opened non-blocking, so a
 * FIFO in its place cannot hang the gateway, and read no further than the limit even if it
 * grows. Past the limit: refused, or with `truncate`, its first `limit` bytes.
 */
export function readBoundedFile(file: string, limit: number, label: string, opts: { truncate?: boolean } = {}): string {
  const s = statSync(file);
  if (!s.isFile()) throw new ManifestError(file, [`${label} must be a regular file`]);
  const tooLarge = (size: number | string): ManifestError =>
    new ManifestError(file, [`${label} is ${size} bytes; the limit is ${limit} bytes (${limit / 1024} KiB)`]);
  if (s.size > limit && !opts.truncate) throw tooLarge(s.size);
  const fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new ManifestError(file, [`${label} must be a regular file`]);
    const buf = Buffer.alloc(limit + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n > limit) {
      if (!opts.truncate) throw tooLarge(`more than ${limit}`);
      n = limit;
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** A model.yaml's text (readBoundedFile, at most MAX_MANIFEST_BYTES). */
export function readManifestFile(file: string): string {
  return readBoundedFile(file, MAX_MANIFEST_BYTES, MANIFEST_FILE);
}

/** Whether a folder is a package: a model.yaml, or (seed 004's directory models) a main.py. */
export function isPackageDir(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE)) || existsSync(join(dir, ANYTHING_MAIN));
}

/** The file a package's problems are reported against: its model.yaml, or a directory model's main.py. */
function packageFile(dir: string): string {
  return existsSync(join(dir, MANIFEST_FILE)) || !existsSync(join(dir, ANYTHING_MAIN))
    ? join(dir, MANIFEST_FILE)
    : join(dir, ANYTHING_MAIN);
}

/** Manifest fields a directory model's `isomodel:` block in config.yaml sets (errors name them there). */
const OWN_FIELDS = new Set(['resources', 'scaling', 'autoload', 'required', 'env']);

/**
 * A directory model (src/manifest/anything.ts, docs/seed-004.md): a folder with main.py and no
 * model.yaml. Its manifest is made from config.yaml and main.py, then validated as any other;
 * problems are reported against config.yaml or main.py.
 */
function loadDirectoryModel(abs: string): ModelPackage {
  const mainFile = join(abs, ANYTHING_MAIN);
  const configFile = join(abs, ANYTHING_CONFIG);
  const hasConfig = existsSync(configFile);
  // The gateway reads these two, and hands config.yaml to the worker: a link out of the folder
  // would let a package read, through the gateway, what its worker user may not.
  const real = realpathSync(abs);
  for (const f of hasConfig ? [mainFile, configFile] : [mainFile]) {
    const r = relative(real, realpathSync(f));
    if (r.startsWith('..') || isAbsolute(r))
      throw new ManifestError(f, [`${relative(abs, f)} links outside the model's folder`]);
  }
  const configText = hasConfig ? readBoundedFile(configFile, MAX_CONFIG_BYTES, ANYTHING_CONFIG) : null;
  const mainText = readBoundedFile(mainFile, MAX_MAIN_SCAN_BYTES, ANYTHING_MAIN, { truncate: true });
  let made;
  try {
    made = directoryManifest({ dir: abs, configText, mainText }, (value) => {
      if (exceedsUnits(value, MAX_MANIFEST_UNITS))
        return `(root): config.yaml expands to more than ${MAX_MANIFEST_UNITS} values and characters (YAML aliases included)`;
      const proto = protoKeyPath(value);
      return proto ? `${proto}: "__proto__" cannot be a key` : null;
    });
  } catch (e) {
    if (e instanceof DirectoryModelProblem)
      throw new ManifestError(e.file === 'config' ? configFile : mainFile, e.issues);
    throw e;
  }
  const parsed = manifestSchema.safeParse(made.raw);
  if (!parsed.success) {
    // Name the config.yaml key at fault: version and name are its own, the rest its isomodel: block.
    const issues = parsed.error.issues.map((i) => {
      const [head, index, field] = i.path;
      const at =
        head === 'tasks' && index === 0 && typeof field === 'string'
          ? `isomodel.${field}`
          : OWN_FIELDS.has(String(head))
            ? `isomodel.${i.path.join('.')}`
            : i.path.join('.') || '(root)';
      return `${at}: ${i.message}`;
    });
    throw new ManifestError(hasConfig ? configFile : mainFile, issues);
  }
  const manifest = { ...parsed.data, env: { ...parsed.data.env, ...made.env } };
  if (!existsSync(ANYTHING_ADAPTER))
    throw new ManifestError(mainFile, [`isomodel's adapter for directory models is missing: ${ANYTHING_ADAPTER}`]);
  return { manifest, dir: abs, fingerprint: fingerprintDir(abs, MAX_PACKAGE_FILES, ANYTHING_SKIP_DIRS) };
}

/** A package folder: its model.yaml, or for a folder with main.py and no model.yaml, the manifest made for it. */
export function loadPackage(dir: string): ModelPackage {
  const abs = resolve(dir);
  const file = join(abs, MANIFEST_FILE);
  if (!existsSync(file) && existsSync(join(abs, ANYTHING_MAIN))) return loadDirectoryModel(abs);
  const manifest = parseManifest(readManifestFile(file), file);
  // Files a manifest names must stay inside its package: a package cannot point the runtime elsewhere.
  const inside = (rel: string): boolean => {
    const r = relative(abs, resolve(abs, rel));
    return r === '' || (!r.startsWith('..') && !isAbsolute(r));
  };
  const commandLine = manifest.runtime === 'command' || manifest.runtime === 'http';
  const named: [string, string | undefined][] = [
    ['entry', commandLine ? undefined : (manifest.entry as string)],
    ['pipeline', manifest.pipeline],
    ['data_dir', manifest.data_dir],
  ];
  const outside = named
    .filter(([, v]) => v !== undefined && !inside(v))
    .map(([k]) => `${k}: must be a path inside the package`);
  if (outside.length) throw new ManifestError(file, outside);
  if (!commandLine) {
    const entry = join(abs, manifest.entry as string);
    if (!existsSync(entry)) throw new ManifestError(file, [`entry: file ${manifest.entry} not found in the package`]);
  }
  return { manifest, dir: abs, fingerprint: fingerprintDir(abs) };
}

export interface Discovery {
  packages: ModelPackage[];
  errors: ManifestError[];
}

/**
 * Every `<modelsDir>/<name>/model.yaml`, and every `<modelsDir>/<name>/main.py` without one (seed
 * 004's directory models); a broken package is reported, never fatal for the rest.
 */
export function discoverPackages(modelsDir: string): Discovery {
  const packages: ModelPackage[] = [];
  const errors: ManifestError[] = [];
  if (!existsSync(modelsDir)) return { packages, errors };
  const names = new Map<string, string>();
  for (const entry of readdirSync(modelsDir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = join(modelsDir, entry.name);
    if (!isPackageDir(dir)) continue;
    try {
      const pkg = loadPackage(dir);
      // Several folders may hold versions of one model (name@version); each version once.
      const id = `${pkg.manifest.name}@${pkg.manifest.version}`;
      const other = names.get(id);
      if (other) throw new ManifestError(packageFile(dir), [`version: ${id} is already provided by ${other}`]);
      names.set(id, dir);
      packages.push(pkg);
    } catch (e) {
      errors.push(e instanceof ManifestError ? e : new ManifestError(packageFile(dir), [(e as Error).message]));
    }
  }
  return { packages, errors };
}

export function isValidModelName(name: string): boolean {
  return MODEL_NAME_PATTERN.test(name);
}
