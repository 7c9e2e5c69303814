// Host software a package uses but does not ship (manifest `requires`): commands on PATH, files
// such as a language pack, Python modules of the system interpreter. Checked before a worker is
// started on the host (process and sandbox isolation): when something is missing the model is
// `needs_packages` (scheduler/registry.ts), a normal state of a fresh machine said once with the
// apt command, not a failed load with an alert.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Manifest } from './schema.js';
import { isExecutable } from '../util/executable.js';

export interface RequirementsInfo {
  /** What is missing, each as "command tesseract", "file /usr/share/…", "python module numpy". */
  missing: string[];
  /** The packages that provide them (manifest requires.packages), for the hint. */
  packages: string[];
  /** What to do, in one sentence a person can follow. */
  hint: string;
}

const PY_CHECK_TIMEOUT_MS = 15_000;

/**
 * What `m` requires that this host lacks, or null when it declares nothing or nothing is missing.
 * `env` is the worker's environment as the operator and manifest set it (its PATH wins).
 */
export async function missingRequirements(
  m: Manifest,
  env: Record<string, string | undefined> = {},
): Promise<RequirementsInfo | null> {
  const r = m.requires;
  if (!r) return null;
  const path = env.PATH ?? m.env.PATH ?? process.env.PATH ?? '';
  const missing = [
    ...r.commands.filter((c) => !onPath(c, path)).map((c) => `command ${c}`),
    ...r.files.filter((f) => !globExists(f)).map((f) => `file ${f}`),
    ...(m.python ? (await missingPythonModules(m.python, r.python_modules)).map((p) => `python module ${p}`) : []),
  ];
  if (!missing.length) return null;
  const install = r.packages.length ? `apt-get install ${r.packages.join(' ')}` : 'install them';
  const hint =
    `${install} (missing: ${missing.join(', ')}), then POST /v1/models/${m.name}/load` + (r.note ? `; ${r.note}` : '');
  return { missing, packages: r.packages, hint };
}

function onPath(command: string, path: string): boolean {
  if (command.includes('/')) return isExecutable(command);
  return path.split(delimiter).some((dir) => dir && isAbsolute(dir) && isExecutable(join(dir, command)));
}

/**
 * Whether an absolute path exists, where `*` in a segment stands for any name (a versioned folder
 * such as /usr/share/tesseract-ocr/<5>/tessdata). Segments without `*` are looked up directly.
 */
export function globExists(pattern: string): boolean {
  const segments = pattern.split('/').filter(Boolean);
  const walk = (dir: string, i: number): boolean => {
    if (i === segments.length) return existsSync(dir);
    const seg = segments[i]!;
    if (!seg.includes('*')) return walk(join(dir, seg), i + 1);
    const re = new RegExp(
      `^${seg
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return false;
    }
    return names.some((n) => re.test(n) && walk(join(dir, n), i + 1));
  };
  return walk('/', 0);
}

/** The modules `python` cannot import (find_spec: nothing is executed). All when it does not run. */
function missingPythonModules(python: string, modules: string[]): Promise<string[]> {
  if (!modules.length) return Promise.resolve([]);
  const script =
    'import importlib.util,json,sys\nout=[]\nfor m in sys.argv[1:]:\n  try:\n    ok=importlib.util.find_spec(m) is not None\n  except Exception:\n    ok=False\n  if not ok: out.append(m)\nprint(json.dumps(out))';
  return new Promise((done) => {
    execFile(
      python,
      ['-c', script, ...modules],
      { timeout: PY_CHECK_TIMEOUT_MS, maxBuffer: 64 * 1024 },
      (err, stdout) => {
        if (err) return done(modules);
        try {
          const out = JSON.parse(stdout) as unknown;
          done(Array.isArray(out) ? out.filter((x): x is string => typeof x === 'string') : modules);
        } catch {
          done(modules);
        }
      },
    );
  });
}
