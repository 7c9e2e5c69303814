// `isomodel serve` as a user starts it: the real CLI in a child process, its output kept for the
// test to read, stopped with SIGTERM. Used where what matters is what a person sees (the first
// start's log, the documented commands and the seeds' curl examples).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort, request, waitFor, type Res } from './helpers.js';

export const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');

/** The test runner's environment without isomodel settings, so none leaks into a child gateway. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('ISOMODEL_') && k !== 'PORT' && k !== 'MODELS_DIR') env[k] = v;
  return { ...env, ...extra };
}

export interface ServeOptions {
  /** Arguments before `serve` (global options: --models-dir, --state-dir, --config). */
  global?: string[];
  cwd?: string;
  env?: Record<string, string>;
}

export class ServeProcess {
  child!: ChildProcess;
  output = '';
  url = '';
  port = 0;

  constructor(readonly opts: ServeOptions = {}) {}

  /** Starts it and waits until /health/live answers (models may still be loading). */
  async start(timeoutMs = 120_000): Promise<void> {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.child = spawn(
      process.execPath,
      [BIN, ...(this.opts.global ?? []), 'serve', '--port', String(this.port), '--no-watch'],
      {
        cwd: this.opts.cwd ?? PACKAGE_ROOT,
        env: cleanEnv(this.opts.env),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-2_000_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    await waitFor(
      async () => {
        if (this.child.exitCode !== null) throw new Error(`serve exited ${this.child.exitCode}: ${this.output}`);
        return (await request(`${this.url}/health/live`, 'GET').catch(() => ({ status: 0 }))).status === 200;
      },
      timeoutMs,
      100,
    );
  }

  /** Waits until no model is loading any more (optional models settle after start). */
  async settled(timeoutMs = 240_000): Promise<void> {
    await waitFor(
      async () => {
        const r = await this.get('/v1/models');
        return r.status === 200 && r.body.data.models.every((m: { status: string }) => m.status !== 'loading');
      },
      timeoutMs,
      200,
    );
  }

  get(path: string): Promise<Res<any>> {
    return request<any>(this.url + path, 'GET');
  }

  post(path: string, body?: unknown): Promise<Res<any>> {
    return request<any>(this.url + path, 'POST', body ?? {});
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  }
}
