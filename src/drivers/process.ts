// Process isolation: one model replica = one child process with a scrubbed environment, its
// own scratch directory, memory/CPU limits, and a strict protocol reader.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ModelPackage } from '../manifest/load.js';
import { cpuPercent, sampleProc, type ProcSample } from '../telemetry/procstat.js';
import { LineSplitter, PROTOCOL_VERSION, type GatewayMessage } from '../worker/protocol.js';
import type { WorkerLogOptions } from '../worker/log-limiter.js';
import { SessionWorker } from '../worker/session.js';
import type { ExitInfo, WorkerHandle, WorkerStats } from '../worker/types.js';
import type { Cgroup, CgroupManager } from './cgroups.js';
import { workerCommand, type WorkerCommand } from './command.js';

export interface ProcessWorkerOptions {
  id: string;
  pkg: ModelPackage;
  python: string;
  stateDir: string;
  cgroups: CgroupManager;
  logger: Logger;
  startupTimeoutMs?: number;
  /** Operator-set variables, applied over the manifest's env. */
  extraEnv?: Record<string, string>;
  /** How often RSS/CPU are sampled (and the RSS watchdog runs). */
  sampleIntervalMs?: number;
  /**
   * Rewrites the worker command before the cgroup/ulimit launcher wraps it (isolation sandbox:
   * drivers/sandbox.ts puts it inside bwrap, so the launcher joins the cgroup, then execs bwrap).
   */
  wrap?: (cmd: WorkerCommand, scratch: string) => WorkerCommand;
  /** Rate and size limits of the worker's stderr in the gateway's log, and where drops are counted. */
  workerLog?: WorkerLogOptions;
}

let launchCounter = 0;

/** Variables a worker inherits from the gateway; everything else (keys, tokens) stays behind. */
const INHERITED_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

export class ProcessWorker extends SessionWorker implements WorkerHandle {
  private child: ChildProcessWithoutNullStreams | null = null;
  private killReason: string | null = null;
  private cgroup: Cgroup | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private lastSample: ProcSample | null = null;
  private lastCpu = 0;
  private exited: Promise<ExitInfo> | null = null;
  private readonly scratch: string;

  constructor(private readonly opts: ProcessWorkerOptions) {
    super(opts.id, opts.logger.child({ model: opts.pkg.manifest.name, replica: opts.id }));
    this.scratch = join(opts.stateDir, 'run', opts.pkg.manifest.name, opts.id);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private buildEnv(): Record<string, string> {
    const m = this.opts.pkg.manifest;
    const env: Record<string, string> = {};
    for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k]!;
    Object.assign(env, {
      HOME: this.scratch,
      TMPDIR: join(this.scratch, 'tmp'),
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      ISOMODEL_PROTOCOL: String(PROTOCOL_VERSION),
      ISOMODEL_MODEL_NAME: m.name,
      ISOMODEL_MODEL_VERSION: m.version,
      ISOMODEL_MODEL_DIR: this.opts.pkg.dir,
      ISOMODEL_DATA_DIR: join(this.opts.pkg.dir, m.data_dir),
      ISOMODEL_ENTRY: Array.isArray(m.entry) ? m.entry.join(' ') : join(this.opts.pkg.dir, m.entry),
      ISOMODEL_REPLICA_ID: this.id,
      ISOMODEL_CPUS: String(m.resources.cpus),
    });
    return { ...env, ...m.env, ...this.opts.extraEnv };
  }

  start(): Promise<void> {
    const m = this.opts.pkg.manifest;
    mkdirSync(join(this.scratch, 'tmp'), { recursive: true });
    let cmd = workerCommand(this.opts.pkg, this.opts.python);
    if (this.opts.wrap) cmd = this.opts.wrap(cmd, this.scratch);
    const env = this.buildEnv();
    // Unique per launch: gateways sharing the machine's hierarchy, and a restart racing the
    // deferred removal of its predecessor's group, never meet in one cgroup.
    this.cgroup = this.opts.cgroups.create(`${m.name}-${process.pid}-${this.id}-${++launchCounter}`, { memoryMb: m.resources.memory_mb, cpus: m.resources.cpus });
    let command = cmd.command;
    let args = cmd.args;
    if (this.cgroup) {
      // The launcher joins the cgroup before exec, so the model never runs unconstrained.
      env.ISOMODEL_CGROUP_PROCS = this.cgroup.procsFiles.join(' ');
      command = '/bin/sh';
      args = ['-c', 'for f in $ISOMODEL_CGROUP_PROCS; do echo $$ > "$f" || exit 97; done; unset ISOMODEL_CGROUP_PROCS; exec "$@"', 'isomodel-worker', cmd.command, ...cmd.args];
    } else if (!cmd.selfLimited) {
      command = '/bin/sh';
      args = ['-c', `ulimit -v ${m.resources.memory_mb * 1024}; exec "$@"`, 'isomodel-worker', cmd.command, ...cmd.args];
    }
    // detached: the worker leads its own process group, so a kill reaches anything it forked.
    const child = spawn(command, args, { cwd: this.scratch, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child = child;
    child.stdin.on('error', () => undefined); // EPIPE from a dead worker surfaces as its exit
    const splitter = new LineSplitter((line) => this.session.onLine(line));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => splitter.push(d));
    const errLog = this.workerLogReader(this.opts.workerLog);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => errLog.push(d));
    child.stderr.on('end', () => errLog.end());

    this.exited = new Promise<ExitInfo>((resolve) => {
      child.on('exit', (code, signal) => resolve(this.onChildExit(code, signal)));
      child.on('error', (err) => {
        this.session.pushLog(`spawn failed: ${err.message}`);
        resolve(this.onChildExit(null, null));
      });
    });
    this.sampler = setInterval(() => this.sample(), this.opts.sampleIntervalMs ?? 250);
    this.sampler.unref();

    const startupTimeout = this.opts.startupTimeoutMs ?? 120_000;
    const timer = setTimeout(() => this.kill(`did not become ready within ${startupTimeout} ms`), startupTimeout);
    return this.session.waitReady().finally(() => clearTimeout(timer));
  }

  protected isRunning(): boolean {
    return this.child !== null;
  }

  protected send(msg: GatewayMessage): void {
    if (!this.child || this.child.exitCode !== null || !this.child.stdin.writable) return;
    this.child.stdin.write(JSON.stringify(msg) + '\n');
  }

  /** Stops the whole process group now. */
  kill(reason: string): void {
    if (!this.child || this.session.state === 'exited') return;
    this.killReason ??= reason;
    const pid = this.child.pid;
    try {
      if (pid) process.kill(-pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  async stop(graceMs = 5000): Promise<void> {
    if (!this.child || this.session.state === 'exited') return;
    this.session.state = 'stopping';
    this.killReason ??= 'stopped';
    this.send({ op: 'shutdown' });
    this.child.stdin.end();
    const timer = setTimeout(() => this.kill('stopped (grace period over)'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private sample(): void {
    const pid = this.child?.pid;
    if (!pid || this.session.state === 'exited') return;
    const s = sampleProc(pid);
    if (!s) return;
    if (this.lastSample) this.lastCpu = cpuPercent(this.lastSample, s);
    this.lastSample = s;
    // Without a cgroup the kernel does not enforce the limit for us: the watchdog does.
    const limit = this.opts.pkg.manifest.resources.memory_mb * 1024 * 1024;
    if (!this.cgroup && s.rssBytes > limit) this.kill(`memory limit exceeded (${this.opts.pkg.manifest.resources.memory_mb} MB)`);
  }

  stats(): WorkerStats {
    const s = this.lastSample;
    return { pid: this.child?.pid, rssBytes: this.cgroup?.memoryBytes() ?? s?.rssBytes, cpuPercent: this.lastCpu, openFds: s?.openFds };
  }

  private exitReason(code: number | null, signal: string | null): string {
    const limitMb = this.opts.pkg.manifest.resources.memory_mb;
    if (this.cgroup?.oomKilled()) return `memory limit exceeded (${limitMb} MB)`;
    if (this.killReason) return this.killReason;
    const tail = this.session.log.join('\n');
    if (/Reached heap limit|JavaScript heap out of memory|MemoryError|Cannot allocate memory/.test(tail)) return `memory limit exceeded (${limitMb} MB)`;
    if (code === 97) return 'could not join its cgroup';
    return signal ? `crashed (signal ${signal})` : `crashed (exit code ${code})`;
  }

  private onChildExit(code: number | null, signal: string | null): ExitInfo {
    const reason = this.exitReason(code, signal);
    if (this.sampler) clearInterval(this.sampler);
    const details = { reason, exit_code: code, signal, log_tail: this.session.log.slice(-5) };
    const expected = this.session.exited(reason, details);
    this.logger[expected ? 'info' : 'warn']({ code, signal, reason }, 'worker exited');
    if (this.cgroup) releaseCgroup(this.cgroup);
    rmSync(this.scratch, { recursive: true, force: true });
    const info: ExitInfo = { code, signal, reason, expected };
    this.emitExit(info);
    return info;
  }

}

/**
 * Removes a replica's cgroup once no process is left in it. The direct child can exit while its
 * descendants are still dying (isolation sandbox: bwrap goes first, the model it contains a
 * moment later), and a cgroup with members cannot be removed: wait for them, briefly.
 */
function releaseCgroup(cg: Cgroup, deadline = Date.now() + 10_000): void {
  const busy = cg.procsFiles.some((f) => {
    try {
      return readFileSync(f, 'utf8').trim() !== '';
    } catch {
      return false;
    }
  });
  if (busy && Date.now() < deadline) {
    setTimeout(() => releaseCgroup(cg, deadline), 50).unref();
    return;
  }
  cg.destroy();
}
