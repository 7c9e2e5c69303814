// Seed 004's directory models (AnythingAgent's format, docs/seed-004.md): a folder under models/
// with main.py (a class deriving from AnythingBaseModel) and no model.yaml, optionally
// config.yaml, requirements.txt and data/. The gateway never imports model code: this module
// reads config.yaml and main.py's text and makes the manifest (the raw object model.yaml would
// hold); its entry is sdk/python/anything_adapter.py, which runs main.py unchanged. load.ts reads
// the files (bounded) and validates the result like any manifest.
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { basename, delimiter, join, relative } from 'node:path';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../paths.js';
import { MODEL_NAME_PATTERN } from './schema.js';

export const ANYTHING_MAIN = 'main.py';
export const ANYTHING_CONFIG = 'config.yaml';
export const ANYTHING_ADAPTER = join(PACKAGE_ROOT, 'sdk', 'python', 'anything_adapter.py');
/** config.yaml as the worker sees it (`self.config`): JSON in this variable (anything_adapter.py). */
export const CONFIG_ENV = 'ISOMODEL_ANYTHING_CONFIG';
/** The Python version config.yaml asks for; the adapter checks the interpreter it runs on. */
export const PYTHON_VERSION_ENV = 'ISOMODEL_ANYTHING_PYTHON_VERSION';

// What a folder controls at load is bounded, as for model.yaml (load.ts).
/** The largest config.yaml read; a larger one is refused unread. */
export const MAX_CONFIG_BYTES = 64 * 1024;
/**
 * config.yaml as JSON, aliases expanded: it travels in one environment variable, and Linux
 * refuses a single variable over 128 KiB (MAX_ARG_STRLEN) when the worker starts.
 */
export const MAX_CONFIG_JSON_BYTES = 96 * 1024;
/** How much of main.py is scanned for the model class's docstring (a larger file is scanned this far). */
export const MAX_MAIN_SCAN_BYTES = 1024 * 1024;
/** Folders of a directory model that are not part of it: AnythingAgent's own venv (`python -m venv venv`). */
export const ANYTHING_SKIP_DIRS = ['venv'];

const DESCRIPTION_MAX = 4096;

/** A problem with a directory model, in the file at fault. */
export class DirectoryModelProblem extends Error {
  constructor(
    readonly file: 'config' | 'main',
    readonly issues: string[],
  ) {
    super(issues.join('; '));
    this.name = 'DirectoryModelProblem';
  }
}

/**
 * A model name from a folder name or config.yaml's `name`: Unicode-normalised (NFKC) and
 * lower-cased, every run of characters other than a-z, 0-9, ".", "_" and "-" made one "_"
 * (the seed's own advice: lowercase and underscores), leading and trailing ".", "_", "-" dropped,
 * cut to 64. "" when nothing is left (a name of only other scripts, say).
 */
export function normaliseModelName(raw: string): string {
  const name = raw
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, 64)
    .replace(/[._-]+$/, '');
  return MODEL_NAME_PATTERN.test(name) ? name : '';
}

/** Python's inspect.cleandoc: the first line stripped, the common indentation of the others removed, blank edges dropped. */
function cleandoc(doc: string): string {
  const lines = doc.replace(/\t/g, '        ').split('\n');
  const rest = lines.slice(1);
  const indents = rest.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length);
  const margin = indents.length ? Math.min(...indents) : 0;
  const out = [lines[0]!.trim(), ...rest.map((l) => l.slice(margin).trimEnd())];
  while (out.length && out[0] === '') out.shift();
  while (out.length && out[out.length - 1] === '') out.pop();
  return out.join('\n');
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '\n': '' };

/**
 * The docstring of main.py's class deriving from AnythingBaseModel, read from the source text
 * (never imported): the string literal that is the class body's first statement, cleaned as
 * Python's inspect.cleandoc does. null when there is none.
 */
export function classDocstring(source: string): string | null {
  const classRe = /^class[ \t]+[A-Za-z_]\w*[ \t]*\(([^)]*)\)[ \t]*:[ \t]*(?:#[^\n]*)?\r?\n/gm;
  for (let m = classRe.exec(source); m; m = classRe.exec(source)) {
    if (!/\bAnythingBaseModel\b/.test(m[1]!)) continue;
    // The body's first statement: blank and comment lines skipped.
    const body = source.slice(m.index + m[0].length);
    const lit = /^(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]+([rRuU]?)("""|'''|"|')/.exec(body);
    if (!lit) return null;
    const raw = lit[1]!.toLowerCase() === 'r';
    const quote = lit[2]!;
    let i = lit[0].length;
    let text = '';
    for (;;) {
      if (i >= body.length) return null; // unterminated
      if (body.startsWith(quote, i)) break;
      const c = body[i]!;
      if (quote.length === 1 && c === '\n') return null;
      if (c === '\\' && i + 1 < body.length) {
        const next = body[i + 1]!;
        text += raw ? c + next : (ESCAPES[next] ?? c + next);
        i += 2;
        continue;
      }
      text += c;
      i++;
    }
    const doc = cleandoc(text.replace(/\r\n/g, '\n'));
    return doc === '' ? null : doc;
  }
  return null;
}

/**
 * A parsed config.yaml value as JSON that Python's json module reads back as PyYAML would have
 * given it: integers (BigInt here, any size) stay integers, floats stay floats (1.0, not 1),
 * .inf / .nan become Infinity / NaN (which json.loads takes), timestamps ISO strings.
 */
export function toPythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
    const s = String(value);
    return /[.e]/.test(s) ? s : `${s}.0`;
  }
  if (typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Date) return JSON.stringify(Number.isNaN(value.getTime()) ? null : value.toISOString());
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (Array.isArray(value) || value instanceof Set) return `[${[...value].map(toPythonJson).join(',')}]`;
  if (value instanceof Map)
    return `{${[...value].map(([k, v]) => `${JSON.stringify(String(k))}:${toPythonJson(v)}`).join(',')}}`;
  if (typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toPythonJson(v)}`)
      .join(',')}}`;
  return JSON.stringify(String(value));
}

const memory = z.union([
  z.number().positive(),
  z
    .string()
    .regex(/^\d+(\.\d+)?\s*(k|m|g|kb|mb|gb|ki|mi|gi|kib|mib|gib)?$/i, 'a size such as "1G", "512M" or a number of MB'),
]);

/** The part of config.yaml isomodel reads; everything else is the model's own (`self.config`). */
const configSchema = z
  .object({
    name: z.union([z.string().max(256), z.number()]).optional(),
    description: z.string().optional(),
    /** `isolation: true` (the seed's prose) or the object (its example). */
    isolation: z
      .union([
        z.boolean(),
        z.null(),
        z
          .object({
            enabled: z.boolean().nullish(),
            python_version: z.unknown().optional(),
            resources: z
              .object({ memory: memory.nullish(), cpu: z.number().positive().max(256).nullish() })
              .passthrough()
              .nullish(),
          })
          .passthrough(),
      ])
      .optional(),
    /**
     * isomodel's own settings for this model (AnythingAgent ignores the key): limits, replicas,
     * whether it loads at start, variables, the conversation limits. Checked as model.yaml's.
     */
    isomodel: z
      .object({
        resources: z.record(z.string(), z.unknown()).optional(),
        scaling: z.record(z.string(), z.unknown()).optional(),
        autoload: z.unknown().optional(),
        required: z.unknown().optional(),
        env: z.record(z.string(), z.unknown()).optional(),
        max_messages: z.unknown().optional(),
        max_length: z.unknown().optional(),
      })
      .strict()
      .nullish(),
  })
  .passthrough();

/** Scalar text as written (so `version: 1.10` is "1.10", not the float 1.1). */
function sourceText(doc: Document, path: string[]): string | undefined {
  const node = doc.getIn(path, true);
  if (!isScalar(node) || node.value === null || node.value === undefined) return undefined;
  return typeof node.source === 'string' ? node.source : String(node.value);
}

/**
 * Where the interpreter for a Python version is: `python<major>.<minor>` (or `python<major>`),
 * looked for in /usr/local/bin, /usr/bin and /bin first (interpreters every user can run, which
 * matters when workers run as another user), then along PATH. null when there is none.
 */
export function findPython(version: string, pathEnv = process.env.PATH ?? ''): string | null {
  const [major, minor] = version.split('.');
  const command = minor === undefined ? `python${major}` : `python${major}.${minor}`;
  const dirs = [
    ...new Set(['/usr/local/bin', '/usr/bin', '/bin', ...pathEnv.split(delimiter).filter((d) => d.startsWith('/'))]),
  ];
  for (const dir of dirs) {
    const p = join(dir, command);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // not there, or not runnable
    }
  }
  return null;
}

export interface DirectoryModelInput {
  /** Absolute folder. */
  dir: string;
  /** config.yaml's text, or null when the folder has none. */
  configText: string | null;
  /** main.py's text (its first MAX_MAIN_SCAN_BYTES). */
  mainText: string;
  /** Interpreter lookup (tests replace it). */
  findPython?: (version: string) => string | null;
}

export interface DirectoryModel {
  /** What model.yaml would hold (load.ts validates it). */
  raw: Record<string, unknown>;
  /** Variables added to the validated manifest's env (config.yaml's JSON may exceed model.yaml's 32 KiB per variable). */
  env: Record<string, string>;
}

/** Parses config.yaml (YAML 1.1, as PyYAML reads it) into its value, the document (for scalar sources) and the JSON the worker gets. */
export function parseConfig(
  text: string,
  maxUnits: (value: unknown) => string | null,
): { value: Record<string, unknown>; doc: Document; json: string } {
  const problem = (issue: string): DirectoryModelProblem => new DirectoryModelProblem('config', [issue]);
  const opts = { version: '1.1' as const, prettyErrors: false };
  const doc = parseDocument(text, opts);
  if (doc.errors.length) throw problem(`not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  if (doc.contents !== null && !isMap(doc.contents))
    throw problem('(root): config.yaml must be a mapping (name: …, version: …)');
  let value: unknown;
  let exact: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) ?? {};
    // Integers as BigInt, so the JSON keeps integers and floats apart (and any integer exact).
    exact = parseDocument(text, { ...opts, intAsBigInt: true }).toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    throw problem(`(root): ${(e as Error).message.split('\n')[0]}`);
  }
  const tooBig = maxUnits(value);
  if (tooBig) throw problem(tooBig);
  const json = toPythonJson(exact);
  if (Buffer.byteLength(json) > MAX_CONFIG_JSON_BYTES) {
    throw problem(
      `(root): config.yaml expands to ${Buffer.byteLength(json)} bytes of JSON (YAML aliases included); the limit is ${MAX_CONFIG_JSON_BYTES} (${MAX_CONFIG_JSON_BYTES / 1024} KiB)`,
    );
  }
  return { value: value as Record<string, unknown>, doc, json };
}

/**
 * The manifest of a directory model (docs/seed-004.md):
 * - name: config.yaml `name`, else the folder's name, normalised (normaliseModelName);
 * - version: config.yaml `version` as written, else 0.0.0;
 * - description: config.yaml `description`, else the model class's docstring;
 * - runtime python, entry the adapter; one task `chat` (input_type chat), streamed;
 * - isolation (`true` or `{enabled: true}`): a venv of its own from requirements.txt, on the
 *   interpreter of `python_version` when given; otherwise the shared interpreter (requirements.txt
 *   is then not installed, as in AnythingAgent's shared mode);
 * - isolation.resources memory / cpu: the worker's memory and CPU limits;
 * - `isomodel:` (optional): model.yaml's resources, scaling, autoload, required, env and the chat
 *   limits max_messages / max_length.
 */
export function directoryManifest(
  input: DirectoryModelInput,
  maxUnits: (value: unknown) => string | null = () => null,
): DirectoryModel {
  const folder = basename(input.dir);
  let config: Record<string, unknown> = {};
  let json = '{}';
  let doc: Document | null = null;
  if (input.configText !== null) {
    const parsed = parseConfig(input.configText, maxUnits);
    config = parsed.value;
    json = parsed.json;
    doc = parsed.doc;
  }
  const checked = configSchema.safeParse(config);
  if (!checked.success)
    throw new DirectoryModelProblem(
      'config',
      checked.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    );
  const c = checked.data;

  const nameFrom = c.name !== undefined ? String(c.name) : folder;
  const name = normaliseModelName(nameFrom);
  if (!name) {
    throw new DirectoryModelProblem(c.name !== undefined ? 'config' : 'main', [
      `name: no model name can be made from ${c.name !== undefined ? 'config.yaml name' : 'the folder name'} ${JSON.stringify(nameFrom)} (names keep a-z, 0-9, ".", "_" and "-"); set name: in config.yaml`,
    ]);
  }
  const version = (doc && sourceText(doc, ['version'])) ?? '0.0.0';
  const docstring = classDocstring(input.mainText);
  let description = c.description ?? docstring ?? '';
  if (description.length > DESCRIPTION_MAX) description = `${description.slice(0, DESCRIPTION_MAX - 1)}…`;

  const iso = c.isolation;
  const isoObj = typeof iso === 'object' && iso !== null ? iso : undefined;
  const isolated = iso === true || isoObj?.enabled === true;
  const env: Record<string, string> = {};
  let python: string | undefined;
  let pythonVersion: string | undefined;
  if (isolated && isoObj?.python_version !== undefined && isoObj.python_version !== null) {
    pythonVersion = (doc && sourceText(doc, ['isolation', 'python_version'])) ?? String(isoObj.python_version);
    if (!/^\d+(\.\d+){0,2}$/.test(pythonVersion))
      throw new DirectoryModelProblem('config', [
        `isolation.python_version: ${JSON.stringify(pythonVersion)} is not a Python version such as "3.10"`,
      ]);
    python = (input.findPython ?? findPython)(pythonVersion) ?? undefined;
    if (!python) {
      const [major, minor] = pythonVersion.split('.');
      throw new DirectoryModelProblem('config', [
        `isolation.python_version: Python ${pythonVersion} is not installed on this machine (no ${minor === undefined ? `python${major}` : `python${major}.${minor}`} in /usr/local/bin, /usr/bin, /bin or on PATH); install it, or change or remove python_version`,
      ]);
    }
    env[PYTHON_VERSION_ENV] = pythonVersion;
  }

  const resources: Record<string, unknown> = {};
  const res = isoObj?.resources;
  if (res?.memory !== undefined && res.memory !== null)
    resources.memory_mb = typeof res.memory === 'number' ? Math.max(1, Math.round(res.memory)) : res.memory;
  if (res?.cpu !== undefined && res.cpu !== null) resources.cpus = res.cpu;
  const own = c.isomodel ?? {};
  Object.assign(resources, own.resources ?? {});

  const task: Record<string, unknown> = {
    name: 'chat',
    input_type: 'chat',
    description: 'Answers a conversation; the reply streams as text.',
    input: { type: 'chat', description: 'messages: [{role, content}] (OpenAI-style)' },
    output: { type: 'text', description: '{text}: the reply; streamed as {text} chunks' },
  };
  if (own.max_messages !== undefined) task.max_messages = own.max_messages;
  if (own.max_length !== undefined) task.max_length = own.max_length;

  const raw: Record<string, unknown> = {
    name,
    version,
    description,
    runtime: 'python',
    // Relative to the folder, as every entry is; it names isomodel's own adapter, not a package file.
    entry: relative(input.dir, ANYTHING_ADAPTER),
    isolation: 'process',
    tasks: [task],
    resources,
    environment: isolated ? { requirements: 'requirements.txt' } : false,
    ...(python !== undefined && { python }),
    data_dir: 'data',
    metadata: {
      format: 'anything-agent',
      folder,
      ...(nameFrom !== name && { name_from: nameFrom }),
      environment: isolated ? 'isolated' : 'shared',
      ...(pythonVersion !== undefined && { python_version: pythonVersion }),
      description_from: c.description !== undefined ? 'config.yaml' : docstring !== null ? 'docstring' : 'none',
    },
  };
  if (own.scaling !== undefined) raw.scaling = own.scaling;
  if (own.autoload !== undefined) raw.autoload = own.autoload;
  if (own.required !== undefined) raw.required = own.required;
  if (own.env !== undefined) raw.env = own.env;
  env[CONFIG_ENV] = json;
  return { raw, env };
}
