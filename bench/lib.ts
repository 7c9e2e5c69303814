// Shared plumbing for benchmarks: servers as child processes, load from autocannon in its own
// process, so the load generator never shares an event loop with what it measures.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort } from '../src/util/net.js';

export { freePort };

export const BENCH_MODELS = join(PACKAGE_ROOT, 'bench', 'models');

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
  const child = spawn(
    process.execPath,
    [
      join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
      '--models-dir',
      modelsDir,
      '--state-dir',
      state,
      'serve',
      '--port',
      String(port),
      '--no-watch',
    ],
    {
      env: { ...process.env, ISOMODEL_RATE_LIMIT: '0', ISOMODEL_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/health/ready`, 120_000);
  const cleanup = (): void => {
    rmSync(state, { recursive: true, force: true });
    rmSync(`${state}-work`, { recursive: true, force: true }); // scratch dirs and envs (config work_dir)
  };
  return { url, pid: child.pid!, stop: stopper(child, cleanup) };
}

const BARE_SCRIPTS = { node: 'bare-server.js', fastify: 'fastify-floor.js', pipe: 'bare-pipe-server.js' } as const;

/**
 * A baseline server answering `body`: bare Node (bench/bare-server.ts), a bare Fastify route
 * (bench/fastify-floor.ts), or bare Node with a child-process hop per request (bench/bare-pipe-server.ts).
 */
export async function startBare(body: string, kind: keyof typeof BARE_SCRIPTS = 'node'): Promise<Server> {
  const port = await freePort();
  const script = BARE_SCRIPTS[kind];
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'bench', script), String(port), body], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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
export function load(
  url: string,
  body: unknown,
  connections: number,
  seconds: number,
  pipelining = 1,
): Promise<LoadResult> {
  const args = [
    join(PACKAGE_ROOT, 'node_modules', 'autocannon', 'autocannon.js'),
    '--json',
    '-c',
    String(connections),
    '-d',
    String(seconds),
    '-p',
    String(pipelining),
    '-m',
    'POST',
    '-H',
    'content-type=application/json',
    '-b',
    JSON.stringify(body),
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as {
        requests: { average: number; total: number };
        latency: { p50: number; p99: number };
        errors: number;
        non2xx: number;
      };
      resolve({
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
        total: r.requests.total,
      });
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

/**
 * Sequential requests over one keep-alive connection, timed with hrtime: latency in ms, and the
 * requests per second one client gets. With `rotate`, `body` is an array of bodies sent in turn.
 */
export function sequentialLatency(
  url: string,
  body: unknown,
  count: number,
  rotate = false,
): Promise<{ p50: number; p99: number; rps: number }> {
  return new Promise((resolve, reject) => {
    const args = [
      join(PACKAGE_ROOT, 'dist', 'bench', 'latency-client.js'),
      url,
      JSON.stringify(body),
      String(count),
      ...(rotate ? ['rotate'] : []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as { p50: number; p99: number; rps: number })
        : reject(new Error(`latency client exited ${code}`)),
    );
  });
}

// ---- additions for the batching and baseline sections ------------------------------------------

/** A copy of model packages in a temp dir, each renamed and with its model.yaml edited. */
export function copyModels(packages: { from: string; name: string; edit?: (yaml: string) => string }[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-bench-models-'));
  chmodSync(dir, 0o755); // mkdtemp's 0700 would keep workers (nobody, when run as root) out
  for (const p of packages) {
    cpSync(p.from, join(dir, p.name), { recursive: true });
    const file = join(dir, p.name, 'model.yaml');
    const yaml = readFileSync(file, 'utf8').replace(/^name: .*$/m, `name: ${p.name}`);
    writeFileSync(file, p.edit ? p.edit(yaml) : yaml);
  }
  return dir;
}

/** Replaces a top-level key of a model.yaml (one-line flow map or an indented block) with `value`. */
export function setYamlKey(yaml: string, key: string, value: string): string {
  const re = new RegExp(`^${key}:.*\\n(?:[ \\t]+.*\\n)*`, 'm');
  if (!re.test(yaml)) return `${yaml.replace(/\n?$/, '\n')}${key}: ${value}\n`;
  return yaml.replace(re, `${key}: ${value}\n`);
}

/** Any HTTP server as a child process, ready once `readyUrl` answers 2xx. */
export async function startServer(
  command: string,
  args: string[],
  readyUrl: string,
  env: Record<string, string> = {},
): Promise<Server> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  let exitCode: number | null = null;
  child.once('exit', (code) => (exitCode = code ?? -1));
  const end = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== null) throw new Error(`${command} ${args.join(' ')} exited ${exitCode} before it was ready`);
    try {
      if ((await fetch(readyUrl)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`${readyUrl} did not come up`);
    }
    await sleep(100);
  }
  return { url: new URL(readyUrl).origin, pid: child.pid!, stop: stopper(child) };
}

/** Runs a command to completion; its stdout parsed as JSON (the last non-empty line). */
export function runJson<T>(command: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        const parsed = JSON.parse(last) as T;
        if (code === 0) resolve(parsed);
        else
          reject(Object.assign(new Error(`${command} ${args.join(' ')} exited ${code}: ${last}`), { result: parsed }));
      } catch {
        reject(new Error(`${command} ${args.join(' ')} exited ${code} without JSON output: ${last.slice(0, 200)}`));
      }
    });
  });
}

// autocannon's programmatic API, run in its own process: `requests` makes every connection
// send the bodies in turn (bodies[0], bodies[1], …, wrapping around).
const ROTATING_LOAD = `
const autocannon = require(process.argv[1]);
autocannon(JSON.parse(process.argv[2]), (err, r) => {
  if (err) { process.stderr.write(String(err) + '\\n'); process.exit(1); }
  process.stdout.write(JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx, total: r.requests.total }));
});`;

/** Like load(), but each connection rotates through several request bodies (POST, JSON). */
export function loadBodies(url: string, bodies: unknown[], connections: number, seconds: number): Promise<LoadResult> {
  const opts = {
    url,
    connections,
    duration: seconds,
    pipelining: 1,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: bodies.map((b) => ({ method: 'POST', body: JSON.stringify(b) })),
  };
  return runJson<LoadResult>(process.execPath, [
    '-e',
    ROTATING_LOAD,
    join(PACKAGE_ROOT, 'node_modules', 'autocannon', 'autocannon.js'),
    JSON.stringify(opts),
  ]);
}

/**
 * CPU time (user + system) a process has used so far, in seconds, from /proc (NaN if gone);
 * with `mainThreadOnly`, only its main thread's (for Node: the event loop, not GC helpers or
 * worker threads).
 */
export function cpuSeconds(pid: number, mainThreadOnly = false): number {
  try {
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    const stat = readFileSync(mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on every Linux Node runs on
  } catch {
    return NaN;
  }
}

/**
 * Share of the machine's CPU time the hypervisor gave to other guests ("steal", /proc/stat) from
 * now until the returned function is called, in percent. On a shared VM this is what makes
 * req/s move by a third between runs of the same build: a row beside the figures says how
 * disturbed they were.
 */
export function stealMeter(): () => number {
  const read = (): { steal: number; total: number } => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
      return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
    } catch {
      return { steal: NaN, total: NaN };
    }
  };
  const a = read();
  return () => {
    const b = read();
    return b.total > a.total ? (100 * (b.steal - a.steal)) / (b.total - a.total) : NaN;
  };
}
