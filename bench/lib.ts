// Shared plumbing for benchmarks: servers as child processes, load from autocannon in its own
// process, so the load generator never shares an event loop with what it measures.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';

export const BENCH_MODELS = join(PACKAGE_ROOT, 'bench', 'models');

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not come up`);
    await sleep(50);
  }
}

export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess, cleanup: () => void = () => undefined): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) {
        cleanup();
        return resolve();
      }
      child.once('exit', () => {
        cleanup();
        resolve();
      });
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
}

/** An isomodel gateway in its own process, serving the given models dir. */
export async function startGateway(modelsDir: string, env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const state = mkdtempSync(join(tmpdir(), 'isomodel-bench-'));
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'isomodel.js'), '--models-dir', modelsDir, '--state-dir', state, 'serve', '--port', String(port), '--no-watch'], {
    env: { ...process.env, ISOMODEL_RATE_LIMIT: '0', ISOMODEL_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/health/ready`, 120_000);
  return { url, pid: child.pid!, stop: stopper(child, () => rmSync(state, { recursive: true, force: true })) };
}

export async function startBare(body: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'bench', 'bare-server.js'), String(port), body], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: stopper(child) };
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

/** autocannon in a child process; latencies in ms. */
export function load(url: string, body: unknown, connections: number, seconds: number, pipelining = 1): Promise<LoadResult> {
  const args = [join(PACKAGE_ROOT, 'node_modules', 'autocannon', 'autocannon.js'), '--json', '-c', String(connections), '-d', String(seconds), '-p', String(pipelining), '-m', 'POST', '-H', 'content-type=application/json', '-b', JSON.stringify(body), url];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number };
      resolve({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx, total: r.requests.total });
    });
  });
}

/** Resident memory of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Sequential requests over one keep-alive connection, timed with hrtime: latency in ms. */
export function sequentialLatency(url: string, body: unknown, count: number): Promise<{ p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'bench', 'latency-client.js'), url, JSON.stringify(body), String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { p50: number; p99: number }) : reject(new Error(`latency client exited ${code}`))));
  });
}
