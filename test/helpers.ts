// Test harness: a real gateway on 127.0.0.1 with a private models dir and state dir.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig, type ConfigInput } from '../src/config/config.js';
import { Gateway } from '../src/gateway.js';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
export { freePort } from '../src/util/net.js';

export const FIXTURES_DIR = join(PACKAGE_ROOT, 'test', 'fixtures', 'models');

export interface Harness {
  gw: Gateway;
  url: string;
  modelsDir: string;
  stateDir: string;
  get<T = any>(path: string, headers?: Record<string, string>): Promise<Res<T>>;
  post<T = any>(path: string, body?: unknown, headers?: Record<string, string>): Promise<Res<T>>;
  close(): Promise<void>;
}

export interface Res<T> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A fresh temp dir workers can enter: mkdtemp makes it 0700, and as root workers run as nobody,
 * so packages, weights or a work dir inside it would be out of their reach.
 */
export function workerTmpDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Copies packages by name from models/ or test/fixtures/models/ into a fresh dir. */
export function makeModelsDir(names: string[]): string {
  const dir = workerTmpDir('isomodel-models-');
  for (const name of names) {
    const src = [join(BUILTIN_MODELS_DIR, name), join(FIXTURES_DIR, name)].find((p) => {
      try {
        cpSync(p, join(dir, name), { recursive: true, errorOnExist: false });
        return true;
      } catch {
        return false;
      }
    });
    if (!src) throw new Error(`no package ${name}`);
  }
  return dir;
}

export async function request<T>(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Res<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: leave the text for the assertion to show
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export interface GatewayOptions {
  /** Collects the gateway's log records (level info and above) here, parsed. */
  logs?: Record<string, unknown>[];
}

export async function startGateway(
  models: string[],
  overrides: ConfigInput = {},
  opts: GatewayOptions = {},
): Promise<Harness> {
  const modelsDir = makeModelsDir(models);
  const stateDir = mkdtempSync(join(tmpdir(), 'isomodel-state-'));
  // cwd and env are the test's own, so a developer's isomodel.config.yaml or .env cannot leak in.
  const config = loadConfig({
    cwd: stateDir,
    env: {},
    overrides: {
      host: '127.0.0.1',
      port: 0,
      models_dir: modelsDir,
      state_dir: stateDir,
      watch: false,
      rate_limit: { max: 100_000 },
      ...overrides,
    },
  });
  const logs = opts.logs;
  const logger = logs
    ? pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
    : pino({ level: process.env.ISOMODEL_TEST_LOG ?? 'silent' });
  const gw = new Gateway(config, logger);
  await gw.start();
  // Optional models load in the background after start; tests want every load settled.
  await waitFor(() => gw.registry.names().every((n) => gw.registry.status(n) !== 'loading'), 180_000, 20);
  const { port } = gw.address();
  const url = `http://127.0.0.1:${port}`;
  return {
    gw,
    url,
    modelsDir,
    stateDir,
    get: (path, headers) => request(url + path, 'GET', undefined, headers),
    post: (path, body, headers) => request(url + path, 'POST', body ?? {}, headers),
    close: async () => {
      await gw.close();
      rmSync(modelsDir, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(gw.config.work_dir ?? `${stateDir}-work`, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns a truthy value or the deadline passes. */
/**
 * Polls fn until it returns something truthy. explain, when given, says what the state was at
 * the timeout (its text ends the error message): a flake in CI then says why, not just when.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  stepMs = 25,
  explain?: () => string | Promise<string>,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) {
      let why = '';
      if (explain) {
        try {
          why = `: ${await explain()}`;
        } catch (e) {
          why = `: (explaining failed: ${(e as Error).message})`;
        }
      }
      throw new Error(`condition not met within ${timeoutMs} ms${why}`);
    }
    await sleep(stepMs);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `promtool check metrics` on an exposition text: its exit code and output. */
export function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error('promtool not found: apt-get install prometheus'));
      else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    p.stdin!.end(text);
  });
}

/** One sample of the text exposition: name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}
