// Finds model packages in a models directory and validates their manifests.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ZodError } from 'zod';
import { manifestSchema, MODEL_NAME_PATTERN, type Manifest } from './schema.js';

export const MANIFEST_FILE = 'model.yaml';

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

export function parseManifest(text: string, file: string): Manifest {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ManifestError(file, [`not valid YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new ManifestError(file, formatZod(parsed.error));
  return parsed.data;
}

const SKIP_DIRS = new Set(['node_modules', '__pycache__', '.venv', '.git']);

/** Cheap content identity: every file's relative path, size and mtime. */
export function fingerprintDir(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (SKIP_DIRS.has(entry.name)) continue;
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

export function loadPackage(dir: string): ModelPackage {
  const abs = resolve(dir);
  const file = join(abs, MANIFEST_FILE);
  const manifest = parseManifest(readFileSync(file, 'utf8'), file);
  // Files a manifest names must stay inside its package: a package cannot point the runtime elsewhere.
  const inside = (rel: string): boolean => {
    const r = relative(abs, resolve(abs, rel));
    return r === '' || (!r.startsWith('..') && !isAbsolute(r));
  };
  const named: [string, string | undefined][] = [['entry', manifest.runtime === 'command' ? undefined : (manifest.entry as string)], ['pipeline', manifest.pipeline], ['data_dir', manifest.data_dir]];
  const outside = named.filter(([, v]) => v !== undefined && !inside(v)).map(([k]) => `${k}: must be a path inside the package`);
  if (outside.length) throw new ManifestError(file, outside);
  if (manifest.runtime !== 'command') {
    const entry = join(abs, manifest.entry as string);
    if (!existsSync(entry)) throw new ManifestError(file, [`entry: file ${manifest.entry} not found in the package`]);
  }
  return { manifest, dir: abs, fingerprint: fingerprintDir(abs) };
}

export interface Discovery {
  packages: ModelPackage[];
  errors: ManifestError[];
}

/** Every `<modelsDir>/<name>/model.yaml`; a broken package is reported, never fatal for the rest. */
export function discoverPackages(modelsDir: string): Discovery {
  const packages: ModelPackage[] = [];
  const errors: ManifestError[] = [];
  if (!existsSync(modelsDir)) return { packages, errors };
  const names = new Map<string, string>();
  for (const entry of readdirSync(modelsDir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = join(modelsDir, entry.name);
    if (!existsSync(join(dir, MANIFEST_FILE))) continue;
    try {
      const pkg = loadPackage(dir);
      // Several folders may hold versions of one model (name@version); each version once.
      const id = `${pkg.manifest.name}@${pkg.manifest.version}`;
      const other = names.get(id);
      if (other) throw new ManifestError(join(dir, MANIFEST_FILE), [`version: ${id} is already provided by ${other}`]);
      names.set(id, dir);
      packages.push(pkg);
    } catch (e) {
      errors.push(e instanceof ManifestError ? e : new ManifestError(join(dir, MANIFEST_FILE), [(e as Error).message]));
    }
  }
  return { packages, errors };
}

export function isValidModelName(name: string): boolean {
  return MODEL_NAME_PATTERN.test(name);
}
