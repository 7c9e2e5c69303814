// Process isolation: one model replica = one child process with a scrubbed environment, its
// own scratch directory, memory/CPU limits, and a strict protocol reader. When the gateway runs
// as root, the worker runs as the worker user (drivers/privilege.ts) in a network namespace of
// its own; its processes, daemons included, all die with it (its cgroup, or its process group
// and launch marker). See docs/security.md.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import { cpuPercent, sampleProc, type ProcSample } from '../util/proc.js';
import { LineSplitter, PROTOCOL_VERSION, type GatewayMessage } from '../worker/protocol.js';
import type { WorkerLogOptions } from '../worker/log-limiter.js';
import { SessionWorker } from '../worker/session.js';
import type { ExitInfo, WorkerHandle, WorkerStats } from '../worker/types.js';
import type { Cgroup, CgroupManager } from './cgroups.js';
import { ENV_SHIM, envScript, EXIT_NO_ENV, workerCommand, type WorkerCommand } from './command.js';
import {
  accessProblem,
  dropArgs,
  removeTree,
  whichCommand,
  workerPython,
  writablePackagePath,
  type PrivilegePlan,
  type Privileges,
} from './privilege.js';
import { gatewayTag, killMarked, LAUNCH_MARKER_VAR, stateTag } from './reap.js';
import { makeScratch, prepareWorkDir, scratchDir } from './workspace.js';
import { httpAdapterConfig, httpExitReason } from './http.js';

/** How long an exited worker's stdout is read for what it still holds (its fatal line) before the exit is reported. */
const STDOUT_DRAIN_MS = 1000;

export interface ProcessWorkerOptions {
  id: string;
  pkg: ModelPackage;
  python: string;
  /** Config work_dir: the replica's scratch dir is made under it (drivers/workspace.ts). */
  workDir: string;
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
   * It must run the command through ENV_SHIM (command.ts), where the worker's environment is set.
   */
  wrap?: (cmd: WorkerCommand, scratch: string, drop: Privileges | null) => WorkerCommand;
  /** Rate and size limits of the worker's stderr in the gateway's log, and where drops are counted. */
  workerLog?: WorkerLogOptions;
  /** Whether the operator allows this model `network: host` (config host_network_models). */
  hostNetworkAllowed?: boolean;
  /** Whom the worker runs as (drivers/privilege.ts); absent: the gateway's own user. */
  privileges?: PrivilegePlan;
  /** Names this gateway's cgroups and scratch dirs (reap.ts): its state dir's tag and its own. */
  owner?: { state: string; gateway: string };
}

let launchCounter = 0;

/** Variables a worker inherits from the gateway; everything else (keys, tokens) stays behind. */
const INHERITED_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

/** The only environment of the processes that start a worker (as root, before it drops). */
const LAUNCHER_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Launcher exit codes, before any model code ran. */
const EXIT_NO_CGROUP = 97;
const EXIT_NO_LOOPBACK = 96;

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export class ProcessWorker extends SessionWorker implements WorkerHandle {
  private child: (ChildProcess & { stdin: Writable; stdout: Readable; stderr: Readable }) | null = null;
  private killReason: string | null = null;
  private cgroup: Cgroup | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private lastSample: ProcSample | null = null;
  private lastCpu = 0;
  private exited: Promise<ExitInfo> | null = null;
  private stopRequested = false;
  /** This launch's scratch dir (set in launch: one per launch, so a late cleanup never meets a restart). */
  private scratch = '';
  private readonly owner: { state: string; gateway: string };
  /** In every process of this launch's environment: found and killed without cgroups. */
  private marker = '';

  constructor(private readonly opts: ProcessWorkerOptions) {
    super(opts.id, opts.logger.child({ model: opts.pkg.manifest.name, replica: opts.id }));
    this.owner = opts.owner ?? { state: stateTag(opts.workDir), gateway: gatewayTag() };
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The worker user's privileges when the gateway is root; null when it is not. */
  protected privileges(): Privileges | null {
    const plan = this.opts.privileges ?? { drop: null };
    if ('error' in plan)
      throw new IsoError('MODEL_NOT_LOADED', `model ${this.opts.pkg.manifest.name} cannot start: ${plan.error}`);
    return plan.drop;
  }

  /**
   * Points runtime python at interpreters the worker user can run: the config's (falling back
   * to /usr/bin/python3, logged once) and the manifest's own (an error when it cannot).
   */
  protected async resolveInterpreters(): Promise<void> {
    const o = this.opts;
    const drop = this.privileges();
    if (!drop || o.pkg.manifest.runtime !== 'python') return;
    o.python = await workerPython(o.python, drop, { fallback: true, logger: o.logger });
    const own = o.pkg.manifest.python;
    if (own !== undefined) {
      const usable = await workerPython(own, drop, { fallback: false });
      if (usable !== own) o.pkg = { ...o.pkg, manifest: { ...o.pkg.manifest, python: usable } };
    }
  }

  /** The worker user's privileges, or null (not root, or no plan: then nothing was started as it). */
  private dropOrNull(): Privileges | null {
    const plan = this.opts.privileges;
    return plan && 'drop' in plan ? plan.drop : null;
  }

  /** Whether stop() was called (a subclass preparing a start gives up then). */
  protected get stopWasRequested(): boolean {
    return this.stopRequested;
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
    // Last, so neither the manifest nor the operator can unset it.
    // runtime http: the adapter's settings are the manifest's http section, not an env variable's.
    // Without a cgroup, the adapter (node: not bounded by an rlimit) puts the memory rlimit on the server.
    const http: Record<string, string> =
      m.runtime === 'http'
        ? {
            ISOMODEL_HTTP: JSON.stringify(
              httpAdapterConfig(m, this.opts.pkg.dir, true, this.cgroup ? null : m.resources.memory_mb),
            ),
          }
        : {};
    return { ...env, ...m.env, ...this.opts.extraEnv, ...http, [LAUNCH_MARKER_VAR]: this.marker };
  }

  /**
   * What the worker user must be able to read (package, entry, the runtime and its host script)
   * and must not be able to write (anything in or above the package). Throws MODEL_NOT_LOADED
   * naming the path and the fix.
   */
  private checkReach(drop: Privileges, cmd: WorkerCommand): void {
    const { pkg } = this.opts;
    const m = pkg.manifest;
    const who = `worker user ${drop.identity.name} (uid ${drop.identity.uid})`;
    const need: [string, string][] = [[pkg.dir, 'rx']];
    if (!Array.isArray(m.entry) && m.runtime !== 'command') need.push([join(pkg.dir, m.entry), 'r']);
    if (m.pipeline) need.push([join(pkg.dir, m.pipeline), 'r']);
    const exe = cmd.command.startsWith('/') ? cmd.command : m.runtime === 'command' ? null : whichCommand(cmd.command);
    if (exe) need.push([exe, 'x']);
    // The host script of node / onnx / python workers (dist/src/worker/…, sdk/python/…).
    if (m.runtime !== 'command' && cmd.args.length > 0) {
      const script = cmd.args.find((a) => a.endsWith('.js') || a.endsWith('.py'));
      if (script) need.push([script, 'r']);
    }
    for (const [path, want] of need) {
      const problem = accessProblem(path, drop.identity, want);
      if (problem) {
        throw new IsoError(
          'MODEL_NOT_LOADED',
          `model ${m.name} cannot start: ${who} cannot ${want.includes('x') && !want.includes('r') ? 'run' : 'read'} ${path} (${problem}). Make it and the directories above it readable by others (chmod o+rX), or move it`,
        );
      }
    }
    // Paths handed over in the environment (weights: model_env, the manifest's env) that exist but
    // that user cannot read would fail deep inside the model: say so here, with the variable.
    for (const [name, value] of Object.entries({ ...m.env, ...this.opts.extraEnv })) {
      if (!value.startsWith('/') || value.includes(':') || !existsSync(value)) continue;
      const problem = accessProblem(value, drop.identity, statSync(value).isDirectory() ? 'rx' : 'r');
      if (problem) {
        throw new IsoError(
          'MODEL_NOT_LOADED',
          `model ${m.name} cannot start: ${who} cannot read ${name}=${value} (${problem}). Make it and the directories above it readable by others (chmod o+rX), or move it`,
        );
      }
    }
    const writable = writablePackagePath(pkg.dir, drop.identity);
    if (writable) {
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `model ${m.name} cannot start: ${writable}, writable by ${who}: a worker could change this model's code or another's. Remove the write permission (chmod go-w) or the ownership by that user`,
      );
    }
  }

  async start(): Promise<void> {
    await this.resolveInterpreters();
    if (this.stopRequested)
      throw new IsoError('MODEL_NOT_LOADED', `model ${this.opts.pkg.manifest.name} was stopped while it was starting`);
    return this.launch();
  }

  private async launch(): Promise<void> {
    const m = this.opts.pkg.manifest;
    const drop = this.privileges();
    try {
      prepareWorkDir(this.opts.workDir, drop);
    } catch (e) {
      throw new IsoError('MODEL_NOT_LOADED', `model ${m.name} cannot start: ${(e as Error).message}`);
    }
    // The host's network is the operator's to grant, not the package's to take: with it, a worker
    // reaches the gateway's API (admin, with auth off).
    if (m.isolation === 'process' && m.network === 'host' && !this.opts.hostNetworkAllowed) {
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `model ${m.name} asks for network: host, which lets its worker reach this machine's network and the gateway's API; only models listed in the config's host_network_models may. Add ${m.name} there if you trust it, or remove network: host from its model.yaml`,
      );
    }
    // A network namespace of its own (only its own loopback): it cannot reach the gateway's API.
    const ownNetwork = drop !== null && m.isolation === 'process' && m.network !== 'host';
    if (ownNetwork && (!drop.unshare || !drop.netns)) {
      const why = drop.unshare
        ? 'the gateway lacks CAP_SYS_ADMIN / CAP_NET_ADMIN'
        : 'unshare (util-linux) is not installed';
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `model ${m.name} cannot start: its worker gets a network namespace of its own (network: none), and ${why}. Fix that, or set network: host in its model.yaml (it can then reach the gateway's API: turn on API keys)`,
      );
    }
    let cmd = workerCommand(this.opts.pkg, this.opts.python);
    if (drop) this.checkReach(drop, cmd);
    const n = ++launchCounter;
    this.scratch = scratchDir(this.opts.workDir, this.owner.gateway, m.name, `${this.id}.${n}`);
    await makeScratch(this.scratch, drop);
    // The environment is applied by ENV_SHIM as the last step (inside bwrap, for the sandbox).
    cmd = this.opts.wrap
      ? this.opts.wrap(cmd, this.scratch, drop)
      : { ...cmd, command: ENV_SHIM[0]!, args: [...ENV_SHIM.slice(1), cmd.command, ...cmd.args] };
    this.marker = `${this.owner.state}-${this.owner.gateway}-${n}`;
    // Unique per launch: gateways sharing the machine's hierarchy, and a restart racing the
    // deferred removal of its predecessor's group, never meet in one cgroup. Named after the
    // state dir and this gateway, so the next gateway of the state dir can remove leftovers.
    this.cgroup = this.opts.cgroups.create(`${this.owner.state}-${this.owner.gateway}-${m.name}-${this.id}-${n}`, {
      memoryMb: m.resources.memory_mb,
      cpus: m.resources.cpus,
    });
    const { script, skipped } = envScript(this.buildEnv());
    if (skipped.length)
      this.logger.warn({ skipped }, 'environment variables with names a shell cannot set were left out');
    // Read by ENV_SHIM; also carries the launch marker, so the marker is in every worker process.
    const env: Record<string, string> = { PATH: LAUNCHER_PATH };

    // The launcher, as the gateway's user: join the cgroup (so the model never runs
    // unconstrained), bring up the loopback of a fresh network namespace, set the rlimit, then
    // exec the worker through setpriv, which drops to the worker user.
    const steps: string[] = [];
    if (this.cgroup) {
      env.ISOMODEL_CGROUP_PROCS = this.cgroup.procsFiles.join(' ');
      steps.push(
        `for f in $ISOMODEL_CGROUP_PROCS; do echo $$ > "$f" || exit ${EXIT_NO_CGROUP}; done; unset ISOMODEL_CGROUP_PROCS`,
      );
    } else if (!cmd.selfLimited) {
      steps.push(`ulimit -v ${m.resources.memory_mb * 1024}`);
    }
    if (ownNetwork) {
      if (drop.ip) steps.push(`${shellQuote(drop.ip)} link set lo up || exit ${EXIT_NO_LOOPBACK}`);
      else this.logger.warn("ip (iproute2) is not installed: the worker's network namespace has its loopback down");
    }
    const argv = [...(drop ? dropArgs(drop) : []), cmd.command, ...cmd.args];
    let command = argv[0]!;
    let args = argv.slice(1);
    if (steps.length > 0) {
      command = '/bin/sh';
      args = ['-c', `${steps.join('; ')}; exec "$@"`, 'isomodel-worker', ...argv];
    }
    if (ownNetwork) {
      args = ['--net', '--', command, ...args];
      command = drop!.unshare!;
    }
    // detached: the worker leads its own process group, so a kill reaches anything it forked.
    const child = spawn(command, args, {
      cwd: this.scratch,
      env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    }) as ChildProcess & { stdin: Writable; stdout: Readable; stderr: Readable };
    this.child = child;
    child.stdin.on('error', () => undefined); // EPIPE from a dead worker surfaces as its exit
    const envPipe = child.stdio[3] as Writable;
    envPipe.on('error', () => undefined);
    envPipe.end(script);
    const splitter = new LineSplitter((line) => this.session.onLine(line));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => splitter.push(d));
    const errLog = this.workerLogReader(this.opts.workerLog);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => errLog.push(d));
    child.stderr.on('end', () => errLog.end());

    // 'exit' may come before the last lines of stdout (a fatal saying why setup failed) are read.
    const stdoutDone = new Promise<void>((r) => {
      child.stdout.once('end', r);
      child.stdout.once('close', r);
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      let done = false;
      const exit = (code: number | null, signal: string | null): void => {
        if (done) return;
        done = true;
        // Read them first; bounded, as something the worker forked may hold the pipe open.
        let timer: NodeJS.Timeout | undefined;
        const drained = Promise.race([stdoutDone, new Promise<void>((r) => (timer = setTimeout(r, STDOUT_DRAIN_MS)))]);
        void drained.then(() => {
          clearTimeout(timer);
          return this.onChildExit(code, signal).then(resolve);
        });
      };
      child.on('exit', (code, signal) => exit(code, signal));
      child.on('error', (err) => {
        this.session.pushLog(`spawn failed: ${err.message}`);
        exit(null, null);
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

  /** Stops the worker now: its process group, and every other process of its launch. */
  kill(reason: string): void {
    if (!this.child || this.session.state === 'exited') return;
    this.killReason ??= reason;
    this.killGroup();
    void this.killRest();
  }

  private killGroup(): void {
    const pid = this.child?.pid;
    try {
      if (pid) process.kill(-pid, 'SIGKILL');
    } catch {
      if (this.child?.exitCode === null) this.child.kill('SIGKILL');
    }
  }

  /**
   * Every process of this launch, wherever it went: the cgroup's members (setsid daemons stay in
   * the group), or without cgroups those carrying this launch's marker (owned by the worker's
   * user: a marker copied into someone else's process does not make us kill it).
   */
  private async killRest(): Promise<void> {
    if (this.cgroup) {
      await this.cgroup.killAll();
      return;
    }
    if (!this.marker) return;
    const drop = this.dropOrNull();
    killMarked(this.marker, drop ? drop.identity.uid : process.getuid?.());
  }

  async stop(graceMs = 5000): Promise<void> {
    this.stopRequested = true;
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
    if (!this.cgroup && s.rssBytes > limit)
      this.kill(`memory limit exceeded (${this.opts.pkg.manifest.resources.memory_mb} MB)`);
  }

  stats(): WorkerStats {
    const s = this.lastSample;
    return {
      pid: this.child?.pid,
      rssBytes: this.cgroup?.memoryBytes() ?? s?.rssBytes,
      cpuPercent: this.lastCpu,
      openFds: s?.openFds,
    };
  }

  private exitReason(code: number | null, signal: string | null): string {
    const limitMb = this.opts.pkg.manifest.resources.memory_mb;
    if (this.cgroup?.oomKilled()) return `memory limit exceeded (${limitMb} MB)`;
    if (this.killReason) return this.killReason;
    const tail = this.session.log.join('\n');
    if (/Reached heap limit|JavaScript heap out of memory|MemoryError|Cannot allocate memory/.test(tail))
      return `memory limit exceeded (${limitMb} MB)`;
    if (code === EXIT_NO_CGROUP) return 'could not join its cgroup';
    if (code === EXIT_NO_LOOPBACK) return 'could not bring up the loopback of its network namespace';
    if (code === EXIT_NO_ENV) return 'could not read its environment';
    const http = httpExitReason(this.opts.pkg.manifest, code);
    if (http) return http;
    return signal ? `crashed (signal ${signal})` : `crashed (exit code ${code})`;
  }

  /**
   * The worker's main process is gone (crash, kill or stop): what it left running dies too and
   * its cgroup goes, then the exit is reported (the replica can restart), then its scratch dir
   * goes. `exited`, which stop() awaits, resolves only after all of it.
   */
  private async onChildExit(code: number | null, signal: string | null): Promise<ExitInfo> {
    const reason = this.exitReason(code, signal);
    if (this.sampler) clearInterval(this.sampler);
    const details = { reason, exit_code: code, signal, log_tail: this.session.log.slice(-5) };
    const expected = this.session.exited(reason, details);
    this.logger[expected ? 'info' : 'warn']({ code, signal, reason }, 'worker exited');
    this.killGroup();
    await this.killRest();
    if (this.cgroup) await releaseCgroup(this.cgroup, this.logger);
    const info: ExitInfo = { code, signal, reason, expected };
    this.emitExit(info);
    // Emptied as the worker user: a worker of another model (same user) racing the removal
    // cannot send a root rm -rf through a symlink.
    await removeTree(this.scratch, this.dropOrNull());
    return info;
  }
}

/**
 * Removes a replica's cgroup once no process is left in it. The direct child can exit while its
 * descendants are still dying (isolation sandbox: bwrap goes first, the model it contains a
 * moment later), and a cgroup with members cannot be removed: kill again and wait, briefly.
 */
async function releaseCgroup(cg: Cgroup, logger: Logger, deadline = Date.now() + 10_000): Promise<void> {
  for (;;) {
    if (cg.destroy()) return;
    if (Date.now() > deadline) {
      logger.warn(
        { pids: cg.pids() },
        'worker cgroup still busy after 10 s: left for the next gateway start to remove',
      );
      return;
    }
    await cg.killAll(200);
    await new Promise((r) => setTimeout(r, 50));
  }
}
