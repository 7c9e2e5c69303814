// Docker isolation (`isolation: docker`): one model replica = one container of the model's image
// (drivers/docker-image.ts), run with NetworkMode none, memory/CPU/pids limits, a read-only root,
// no capabilities and an unprivileged user. The worker protocol runs over the container's
// attached stdin/stdout (the engine's hijacked attach stream, demultiplexed): with NetworkMode
// none there is no port to publish, and no host directory has to be shared. See docs/docker.md.
import { constants as osConstants } from 'node:os';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import { procIoProbe, type IoSample, type WorkerIoProbe } from '../util/proc.js';
import { LineSplitter, type GatewayMessage } from '../worker/protocol.js';
import { DEFAULT_WORKER_LOG_LIMITS, TRUNCATED_MARK, type WorkerLogOptions } from '../worker/log-limiter.js';
import { KEPT_LOG_LINES, SessionWorker } from '../worker/session.js';
import type { ExitInfo, WorkerHandle, WorkerStats } from '../worker/types.js';
import { ensureModelImage } from './docker-image.js';
import { containerEnv, containerSpec, httpAdapterSpec, httpServerEnv, httpServerSpec } from './docker-spec.js';
import { operatorWeightsPath } from '../manifest/weights.js';
import { parseContainerStats, type ContainerSample } from './docker-stats.js';
import { httpExitReason } from './http.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

export interface DockerSettings {
  socket: string;
  build: boolean;
  build_timeout_s: number;
}

const engines = new Map<string, Promise<Docker>>();

/**
 * One client per socket, shared by every replica. dockerode is loaded on first use: processes
 * that never start a container (most CLI commands, gateways without docker models) skip it.
 */
export function dockerEngine(socket = DEFAULT_DOCKER_SOCKET): Promise<Docker> {
  let d = engines.get(socket);
  if (!d) {
    d = import('dockerode').then(({ default: Dockerode }) => new Dockerode({ socketPath: socket }));
    engines.set(socket, d);
  }
  return d;
}

const engineCpus = new WeakMap<Docker, Promise<number>>();

/** CPUs of the engine's host: NanoCpus above that is refused by the engine. */
function cpusOf(engine: Docker): Promise<number> {
  let p = engineCpus.get(engine);
  if (!p) {
    p = engine.info().then((i: { NCPU?: number }) => i.NCPU || 1);
    p.catch(() => engineCpus.delete(engine));
    engineCpus.set(engine, p);
  }
  return p;
}

/** Live replicas by model, version and replica id: what the monitor's I/O probe looks up. */
const live = new Map<string, DockerWorker>();
const liveKey = (model: string, version: string, replica: string): string => `${model}\0${version}\0${replica}`;

/**
 * The monitor's I/O probe (telemetry/monitor.ts): container replicas report the engine's block
 * and network counters; every other replica falls through to the /proc probe.
 */
export const dockerIoProbe: WorkerIoProbe = (target) => {
  const w = live.get(liveKey(target.model, target.version, target.replica.id));
  return w ? w.io() : procIoProbe(target);
};

const SIGNALS = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

export interface DockerWorkerOptions {
  id: string;
  pkg: ModelPackage;
  engine: Docker | Promise<Docker>;
  settings: DockerSettings;
  stateDir: string;
  logger: Logger;
  /** Operator-set variables, applied over the manifest's env. */
  extraEnv?: Record<string, string>;
  /** From the container's start to its ready line (image builds have their own limit). */
  startupTimeoutMs?: number;
  /** Rate and size limits of the container's stderr in the gateway's log, and where drops are counted. */
  workerLog?: WorkerLogOptions;
}

export class DockerWorker extends SessionWorker implements WorkerHandle {
  private engine: Docker | null = null;
  private container: Docker.Container | null = null;
  private channel: Duplex | null = null;
  private stdinClosed = false;
  /** Started, with its exit watched: from here on, kill() goes to the engine. */
  private running = false;
  private launched = false;
  private stopRequested = false;
  private launchError: IsoError | null = null;
  private _pid: number | undefined;
  private imageId: string | undefined;
  private killReason: string | null = null;
  private startupTimer: NodeJS.Timeout | null = null;
  private outputDone: Promise<void> = Promise.resolve();
  private statsStream: Readable | null = null;
  private sample: ContainerSample | null = null;
  private finishing = false;
  /** runtime http: the model's own server container, whose network the adapter container shares. */
  private server: Docker.Container | null = null;
  private logLines: ReturnType<SessionWorker['workerLogReader']> | null = null;
  private readonly finished: Promise<ExitInfo>;
  private resolveFinished!: (i: ExitInfo) => void;

  constructor(private readonly opts: DockerWorkerOptions) {
    super(opts.id, opts.logger.child({ model: opts.pkg.manifest.name, replica: opts.id }));
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** The container's init process, in the engine host's PID namespace. */
  get pid(): number | undefined {
    return this._pid;
  }
  /** The container id, once created. */
  get containerId(): string | undefined {
    return this.container?.id;
  }

  start(): Promise<void> {
    const ready = this.session.waitReady();
    ready.then(
      () => this.startupTimer && clearTimeout(this.startupTimer),
      () => undefined,
    );
    this.launched = true;
    void this.launch();
    return ready;
  }

  private checkStop(): void {
    if (this.stopRequested)
      throw new IsoError('MODEL_NOT_LOADED', `model worker ${this.killReason ?? 'stopped'} before it started`);
  }

  private async launch(): Promise<void> {
    const { pkg, settings } = this.opts;
    const m = pkg.manifest;
    try {
      const engine = (this.engine = await this.opts.engine);
      const image = await ensureModelImage(engine, pkg, {
        stateDir: this.opts.stateDir,
        logger: this.logger,
        build: settings.build,
        buildTimeoutMs: settings.build_timeout_s * 1000,
      });
      this.checkStop();
      const hostCpus = await cpusOf(engine);
      const env = containerEnv(pkg, this.id, this.opts.extraEnv);
      // runtime http: the server's container first; the adapter's joins its network namespace.
      const serverId = m.runtime === 'http' ? await this.startServer(engine, hostCpus) : null;
      this.checkStop();
      const weights = operatorWeightsPath(pkg.manifest, this.opts.extraEnv);
      const spec = serverId
        ? httpAdapterSpec({ pkg, replicaId: this.id, image, env, hostCpus, serverId })
        : containerSpec({ pkg, replicaId: this.id, image, env, hostCpus, readOnlyMounts: weights ? [weights] : [] });
      this.container = await engine.createContainer(spec);
      this.checkStop();
      // Attached before start, so not one line of the worker's output is missed.
      const stream = (await this.container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as Duplex;
      this.wire(stream);
      this.checkStop();
      await this.container.start();
      this.running = true;
      this.watchExit(this.container);
      const info = await this.container.inspect();
      this._pid = info.State.Pid || undefined;
      this.imageId = info.Image;
      // runtime http: the model's processes, memory and CPU are the server's.
      if (this.server) this._pid = (await this.server.inspect()).State.Pid || this._pid;
    } catch (e) {
      if (this.running) return; // the exit watch reports it
      this.launchError =
        e instanceof IsoError ? e : new IsoError('MODEL_NOT_LOADED', `docker: ${(e as Error).message}`);
      this.pushLog(this.launchError.message);
      await this.finish();
      return;
    }
    if (this.finishing) return; // it already exited: the exit watch reports it
    live.set(liveKey(m.name, m.version, this.id), this);
    this.watchStats(this.server ?? this.container);
    if (this.stopRequested) {
      void this.container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
      return;
    }
    const startupTimeout = this.opts.startupTimeoutMs ?? 120_000;
    if (this.session.state === 'starting')
      this.startupTimer = setTimeout(
        () => this.kill(`did not become ready within ${startupTimeout} ms`),
        startupTimeout,
      );
  }

  /** Demultiplexes the attach stream: stdout is the protocol, stderr the worker's log. */
  private wire(stream: Duplex): void {
    this.channel = stream;
    stream.on('error', () => undefined); // a broken channel surfaces as the container's exit
    const out = new PassThrough();
    const err = new PassThrough();
    out.setEncoding('utf8');
    err.setEncoding('utf8');
    const lines = new LineSplitter((line) => this.session.onLine(line));
    const logLines = (this.logLines ??= this.workerLogReader(this.opts.workerLog));
    out.on('data', (d: string) => lines.push(d));
    err.on('data', (d: string) => logLines.push(d));
    err.on('end', () => logLines.end());
    this.engine!.modem.demuxStream(stream, out, err);
    this.outputDone = new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
    });
  }

  /**
   * runtime http: creates and starts the server's container from http.image (which must be on the
   * engine: nothing is pulled), its output into the replica's log, its exit ending the replica.
   */
  private async startServer(engine: Docker, hostCpus: number): Promise<string> {
    const { pkg } = this.opts;
    const ref = pkg.manifest.http!.image!;
    let imageId: string;
    try {
      imageId = (await engine.getImage(ref).inspect()).Id;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode !== 404) throw e;
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `image ${ref} (http.image of model ${pkg.manifest.name}) is not on the docker engine, and isomodel pulls nothing: docker pull, docker load or docker build it there`,
      );
    }
    const spec = httpServerSpec({
      pkg,
      replicaId: this.id,
      image: imageId,
      env: httpServerEnv(pkg, this.id, this.opts.extraEnv),
      hostCpus,
    });
    const server = (this.server = await engine.createContainer(spec));
    const stream = (await server.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    stream.on('error', () => undefined);
    // Whole lines into the replica's log reader (shared with the adapter's stderr, so no line tears).
    const logLines = (this.logLines ??= this.workerLogReader(this.opts.workerLog));
    const lines = new LineSplitter((line) => logLines.push(`${line}\n`));
    const sink = new PassThrough();
    sink.setEncoding('utf8');
    sink.on('data', (d: string) => lines.push(d));
    engine.modem.demuxStream(stream, sink, sink);
    this.checkStop();
    await server.start();
    void server
      .wait()
      .catch(() => undefined)
      .then(async () => {
        if (this.finishing) return;
        const st = (await server.inspect().catch(() => null))?.State;
        const code = st?.ExitCode;
        const why = st?.OOMKilled
          ? `memory limit exceeded (${pkg.manifest.resources.memory_mb} MB)`
          : `the model's server container exited (${code !== undefined && code > 128 && SIGNALS.has(code - 128) ? `signal ${SIGNALS.get(code - 128)}` : `exit code ${code}`})`;
        this.pushLog(why);
        this.kill(why);
        if (!this.running) this.stopRequested = true;
      });
    return server.id;
  }

  /** runtime http: the server's container goes with its replica (SIGTERM, then SIGKILL after 2 s). */
  private async removeServer(): Promise<void> {
    const s = this.server;
    if (!s) return;
    await s.stop({ t: 2 }).catch(() => undefined);
    await s
      .remove({ force: true, v: true })
      .catch((e: Error) =>
        this.logger.warn({ err: e.message, container: s.id }, 'could not remove the server container'),
      );
  }

  private watchExit(c: Docker.Container): void {
    void c
      .wait()
      .catch(() => undefined)
      .then(() => this.finish());
  }

  private watchStats(c: Docker.Container): void {
    c.stats({ stream: true })
      .then((s) => {
        const stream = s as unknown as Readable;
        if (this.session.state === 'exited') return void stream.destroy();
        this.statsStream = stream;
        const lines = new LineSplitter((line) => {
          try {
            this.sample = parseContainerStats(JSON.parse(line));
          } catch {
            // a torn line: the next sample comes within a second
          }
        });
        stream.on('data', (d: Buffer) => lines.push(d.toString('utf8')));
        stream.on('error', () => undefined);
      })
      .catch(() => undefined); // stats are best effort; the worker runs without them
  }

  private pushLog(line: string): void {
    this.session.pushLog(line);
  }

  protected isRunning(): boolean {
    return this.running;
  }

  protected send(msg: GatewayMessage): void {
    if (!this.channel || this.stdinClosed || this.session.state === 'exited' || !this.channel.writable) return;
    this.channel.write(JSON.stringify(msg) + '\n');
  }

  /** SIGKILL to the container (every process in it); before it runs, the launch is abandoned. */
  kill(reason: string): void {
    if (this.session.state === 'exited') return;
    this.killReason ??= reason;
    if (!this.running || !this.container) {
      this.stopRequested = true;
      return;
    }
    void this.container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  }

  /** shutdown, end of stdin, SIGKILL after the grace period; resolves once the container is removed. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.session.state === 'exited') return;
    if (!this.launched) {
      this.session.state = 'exited';
      return;
    }
    this.session.state = 'stopping';
    this.killReason ??= 'stopped';
    this.stopRequested = true;
    if (!this.running) {
      await this.finished; // launch() notices the stop at its next step
      return;
    }
    this.send({ op: 'shutdown' });
    this.stdinClosed = true;
    this.channel?.end();
    const timer = setTimeout(() => this.kill('stopped (grace period over)'), graceMs);
    await this.finished;
    clearTimeout(timer);
  }

  stats(): WorkerStats {
    return { pid: this._pid, rssBytes: this.sample?.memoryBytes, cpuPercent: this.sample?.cpuPercent };
  }

  /** Cumulative block and network I/O from the engine's stats (null where it reports none). */
  io(): Partial<IoSample> {
    const s = this.sample;
    if (!s) return {};
    return {
      disk_read_bytes: s.diskReadBytes,
      disk_write_bytes: s.diskWriteBytes,
      net_rx_bytes: s.netRxBytes,
      net_tx_bytes: s.netTxBytes,
    };
  }

  private exitReason(code: number | null, signal: string | null, oomKilled: boolean): string {
    const limitMb = this.opts.pkg.manifest.resources.memory_mb;
    if (oomKilled) return `memory limit exceeded (${limitMb} MB)`;
    if (this.killReason) return this.killReason;
    const tail = this.session.log.join('\n');
    if (/Reached heap limit|JavaScript heap out of memory|MemoryError|Cannot allocate memory/.test(tail))
      return `memory limit exceeded (${limitMb} MB)`;
    return (
      httpExitReason(this.opts.pkg.manifest, code) ??
      (signal ? `crashed (signal ${signal})` : `crashed (exit code ${code})`)
    );
  }

  /** Log lines the attach stream did not deliver (it broke early): read back from the engine. */
  private async readEngineLog(c: Docker.Container): Promise<void> {
    try {
      const buf = (await c.logs({
        stdout: false,
        stderr: true,
        follow: false,
        tail: KEPT_LOG_LINES,
      })) as unknown as Buffer;
      const max = this.opts.workerLog?.limits?.max_line_chars ?? DEFAULT_WORKER_LOG_LIMITS.max_line_chars;
      for (const line of demuxFrames(buf).split('\n'))
        if (line.trim()) this.pushLog(line.length > max ? line.slice(0, max) + TRUNCATED_MARK : line);
    } catch {
      // the container is already gone: nothing more to read
    }
  }

  /** Everything after the container stopped (or never started): report, then remove it. */
  private async finish(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    const c = this.container;
    let code: number | null = null;
    let signal: string | null = null;
    let oomKilled = false;
    if (c && this.running) {
      const st = (await c.inspect().catch(() => null))?.State;
      // The stream ends when the container does; let its last lines (a fatal, a traceback) land.
      await Promise.race([this.outputDone, new Promise((r) => setTimeout(r, 2000))]);
      if (this.session.log.length === 0) await this.readEngineLog(c);
      oomKilled = st?.OOMKilled === true;
      code = st?.ExitCode ?? null;
      // 128 + n: the container's process died of signal n (docker reports no signal itself).
      if (code !== null && code > 128 && SIGNALS.has(code - 128)) {
        signal = SIGNALS.get(code - 128)!;
        code = null;
      }
    }
    const reason =
      this.launchError && !this.running
        ? (this.killReason ?? `failed to start: ${this.launchError.message}`)
        : this.exitReason(code, signal, oomKilled);
    const details = { reason, exit_code: code, signal, log_tail: this.session.log.slice(-5) };
    const expected = this.session.exited(reason, details, this.launchError ?? undefined);
    const m = this.opts.pkg.manifest;
    if (live.get(liveKey(m.name, m.version, this.id)) === this) live.delete(liveKey(m.name, m.version, this.id));
    if (this.startupTimer) clearTimeout(this.startupTimer);
    this.statsStream?.destroy();
    this.channel?.destroy();
    this.logger[expected ? 'info' : 'warn']({ code, signal, reason, container: c?.id }, 'worker exited');
    const info: ExitInfo = { code, signal, reason, expected };
    this.emitExit(info);
    // Removed only after inspect and logs were read; stop() resolves once it is gone.
    if (c)
      await c
        .remove({ force: true, v: true })
        .catch((e: Error) => this.logger.warn({ err: e.message, container: c.id }, 'could not remove container'));
    await this.removeServer();
    if (this.imageId) await removeIfDangling(this.engine!, this.imageId);
    this.resolveFinished(info);
  }
}

/**
 * Drops a model image that a rebuild has untagged, once its last container is gone (while an
 * old deployment still drains, the engine refuses: the last container to go removes it).
 */
async function removeIfDangling(engine: Docker, id: string): Promise<void> {
  try {
    const img = await engine.getImage(id).inspect();
    if ((img.RepoTags ?? []).length === 0 && img.Config?.Labels?.['isomodel.model']) await engine.getImage(id).remove();
  } catch {
    // in use by another container, or already gone
  }
}

/** The payloads of a non-TTY log buffer (8-byte frame headers: stream, 0, 0, 0, length). */
export function demuxFrames(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(parts).toString('utf8');
}
