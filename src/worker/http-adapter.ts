// The worker of runtime http: speaks the worker protocol on stdin/stdout to the gateway and HTTP
// to the model's own server on loopback. It runs inside the replica's isolation (process: same
// user, cgroup and network namespace, with the server as its child; docker: a container sharing
// the server container's network namespace), so the server is never reachable from outside and
// batching, auth, metrics, restarts and scaling are the gateway's as for every model.
// Configuration: ISOMODEL_HTTP (JSON, HttpAdapterConfig), written by drivers/http.ts.
// Usage: node dist/src/worker/http-adapter.js
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, Agent } from 'node:http';
import { createServer } from 'node:net';
import { gatewayLines, send } from './host-io.js';
import { LineSplitter, PROTOCOL_VERSION, type GatewayMessage, type ItemOutput, type WorkItem } from './protocol.js';

export interface HttpAdapterConfig {
  /** The server's port; null: choose a free loopback port (command form only). */
  port: number | null;
  health_path: string;
  predict_path: string;
  method: 'POST' | 'PUT';
  /** JSON template; "$input", "$inputs", "$options", "$task" string values are replaced. */
  request: unknown;
  /** Dot path of the output in the answer; "" = the whole answer. */
  response: string;
  batch: 'item' | 'list';
  max_response_bytes: number;
  startup_timeout_ms: number;
  health_interval_ms: number;
  health_timeout_ms: number;
  unhealthy_after: number;
  /** The server's command line ("{port}" replaced); null when the server runs elsewhere (its own container). */
  command: string[] | null;
  /**
   * RLIMIT_AS for the server (MB), where no cgroup bounds the replica: the process driver cannot
   * put one on the adapter (node reserves far more address space than it uses). null: none.
   */
  server_memory_mb?: number | null;
}

/** Exit codes the gateway's log tail explains (the adapter writes why to stderr first). */
export const EXIT_SERVER_GONE = 70;
export const EXIT_UNHEALTHY = 71;

/** Bytes of all outputs of one batch: the gateway reads a result line of at most 64 MiB. */
const MAX_RESULT_BYTES = 48 * 1024 * 1024;
/** Characters of a server's error answer quoted in an item's error message. */
const ERROR_SNIPPET = 300;

function log(line: string): void {
  process.stderr.write(`[http-adapter] ${line}\n`);
}

class ItemFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The template with its placeholders replaced (only string values that are exactly a placeholder). */
export function fillTemplate(t: unknown, values: Record<string, unknown>): unknown {
  if (typeof t === 'string') return Object.prototype.hasOwnProperty.call(values, t) ? values[t] : t;
  if (Array.isArray(t)) return t.map((v) => fillTemplate(v, values));
  if (typeof t === 'object' && t !== null)
    return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, fillTemplate(v, values)]));
  return t;
}

/** The value at a dot path ("data.predictions", "results.0"); undefined when it is not there. */
export function atPath(value: unknown, path: string): unknown {
  if (path === '') return value;
  let v = value;
  for (const key of path.split('.')) {
    if (Array.isArray(v) && /^\d+$/.test(key)) v = v[Number(key)];
    else if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.prototype.hasOwnProperty.call(v, key))
      v = (v as Record<string, unknown>)[key];
    else return undefined;
  }
  return v;
}

/** A task output is an object: anything else the server answers is wrapped as {output: value}. */
function asOutput(v: unknown): ItemOutput {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as ItemOutput) : { output: v };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Answer {
  status: number;
  body: Buffer;
}

export class HttpAdapter {
  private port = 0;
  private server: ChildProcess | null = null;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private busy = false;
  private failures = 0;
  private readySent = false;
  private healthTimer: NodeJS.Timeout | null = null;
  private shuttingDown = false;
  /** Aborts the in-flight batch's requests (cancel). */
  private abort: AbortController | null = null;
  private currentId: string | null = null;
  private readonly queue: Extract<GatewayMessage, { op: 'predict' }>[] = [];

  constructor(private readonly cfg: HttpAdapterConfig) {}

  async run(): Promise<void> {
    this.port = this.cfg.port ?? (await freePort());
    if (this.cfg.command) this.startServer(this.cfg.command);
    const splitter = new LineSplitter((line) => this.onLine(line));
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => splitter.push(d));
    process.stdin.on('end', () => void this.shutdown());
    try {
      await this.waitHealthy();
    } catch (e) {
      send({ op: 'fatal', code: 'MODEL_NOT_LOADED', message: (e as Error).message });
      this.server?.kill('SIGKILL');
      process.exit(1);
    }
    send({
      op: 'ready',
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      model: { name: process.env.ISOMODEL_MODEL_NAME, version: process.env.ISOMODEL_MODEL_VERSION },
      capabilities: { stream: false },
    });
    this.scheduleHealth();
  }

  private startServer(argv: string[]): void {
    let [cmd, ...args] = argv.map((a) => a.replaceAll('{port}', String(this.port)));
    const limit = this.cfg.server_memory_mb;
    if (limit) {
      args = ['-c', `ulimit -v ${Math.floor(limit) * 1024} && exec "$@"`, 'isomodel-http-server', cmd!, ...args];
      cmd = '/bin/sh';
    }
    // The server's stdout goes to stderr too: stdout is the protocol channel.
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(this.port) };
    delete env.ISOMODEL_HTTP;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.server = child;
    child.stdout!.pipe(process.stderr, { end: false });
    child.stderr!.pipe(process.stderr, { end: false });
    child.on('error', (e) => {
      log(`could not start the server ${cmd}: ${e.message}`);
      if (!this.readySent)
        send({
          op: 'fatal',
          code: 'MODEL_NOT_LOADED',
          message: `could not start the model's server ${cmd}: ${e.message}`,
        });
      process.exit(EXIT_SERVER_GONE);
    });
    child.on('exit', (code, signal) => {
      if (this.shuttingDown) return process.exit(0);
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      log(`the model's server exited (${how})`);
      if (!this.readySent)
        send({
          op: 'fatal',
          code: 'MODEL_NOT_LOADED',
          message: `the model's server exited before it was healthy (${how})`,
        });
      // The replica goes with it: the gateway fails what was in flight and starts a fresh one.
      process.exit(EXIT_SERVER_GONE);
    });
  }

  private async waitHealthy(): Promise<void> {
    const deadline = Date.now() + this.cfg.startup_timeout_ms;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      try {
        const a = await this.call(
          'GET',
          this.cfg.health_path,
          undefined,
          Math.min(this.cfg.health_timeout_ms, Math.max(50, deadline - Date.now())),
          64 * 1024,
        );
        if (a.status >= 200 && a.status < 300) {
          this.readySent = true;
          return;
        }
        last = `${this.cfg.health_path} answered ${a.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `the model's server was not healthy within ${this.cfg.startup_timeout_ms} ms (GET ${this.cfg.health_path} on port ${this.port}: ${last})`,
    );
  }

  /** Idle health checks: a server that fails unhealthy_after in a row ends the replica (replaced). */
  private scheduleHealth(): void {
    if (this.cfg.health_interval_ms <= 0 || this.shuttingDown) return;
    this.healthTimer = setTimeout(() => void this.checkHealth(), this.cfg.health_interval_ms);
    this.healthTimer.unref();
  }

  private async checkHealth(): Promise<void> {
    // A busy server is judged by its batch's deadline (the gateway's timeout), not by probes.
    if (!this.busy && !this.shuttingDown) {
      let why: string | null = null;
      try {
        const a = await this.call('GET', this.cfg.health_path, undefined, this.cfg.health_timeout_ms, 64 * 1024);
        if (a.status < 200 || a.status >= 300) why = `answered ${a.status}`;
      } catch (e) {
        why = (e as Error).message;
      }
      if (why === null) this.failures = 0;
      else if (!this.busy) {
        this.failures++;
        log(`health check ${this.failures}/${this.cfg.unhealthy_after} failed: GET ${this.cfg.health_path} ${why}`);
        if (this.failures >= this.cfg.unhealthy_after) {
          log(`the model's server is unhealthy (${this.failures} failed health checks in a row): replica ends`);
          this.server?.kill('SIGKILL');
          process.exit(EXIT_UNHEALTHY);
        }
      }
    }
    this.scheduleHealth();
  }

  private readonly onLine = gatewayLines(
    () => log('unreadable line from the gateway'),
    (msg) => this.onMessage(msg),
  );

  private onMessage(msg: Exclude<GatewayMessage, { op: 'ping' }>): void {
    switch (msg.op) {
      case 'cancel':
        if (this.currentId === msg.id) this.abort?.abort();
        else {
          const i = this.queue.findIndex((q) => q.id === msg.id);
          if (i !== -1) {
            this.queue.splice(i, 1);
            send({ op: 'error', id: msg.id, code: 'CANCELLED', message: 'cancelled' });
          }
        }
        break;
      case 'shutdown':
        void this.shutdown();
        break;
      case 'predict':
        if (this.shuttingDown)
          send({ op: 'error', id: msg.id, code: 'PREDICTION_FAILED', message: 'worker is shutting down' });
        else {
          this.queue.push(msg);
          void this.drain();
        }
        break;
    }
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let msg = this.queue.shift(); msg; msg = this.queue.shift()) await this.predict(msg);
    } finally {
      this.busy = false;
    }
    if (this.shuttingDown) this.finishShutdown();
  }

  private async predict(msg: Extract<GatewayMessage, { op: 'predict' }>): Promise<void> {
    this.abort = new AbortController();
    this.currentId = msg.id;
    const signal = this.abort.signal;
    try {
      const outputs =
        this.cfg.batch === 'list'
          ? await this.predictList(msg.task, msg.items, signal)
          : await this.predictItems(msg.task, msg.items, signal);
      send({ op: 'result', id: msg.id, outputs });
    } catch (e) {
      if (signal.aborted) send({ op: 'error', id: msg.id, code: 'CANCELLED', message: 'cancelled' });
      else if (e instanceof ItemFailure) send({ op: 'error', id: msg.id, code: e.code, message: e.message });
      else send({ op: 'error', id: msg.id, code: 'PREDICTION_FAILED', message: (e as Error).message });
    } finally {
      this.abort = null;
      this.currentId = null;
    }
  }

  private async predictItems(task: string, items: WorkItem[], signal: AbortSignal): Promise<ItemOutput[]> {
    const outputs: ItemOutput[] = [];
    let total = 0;
    for (const item of items) {
      if (signal.aborted) throw new Error('cancelled');
      const body = fillTemplate(this.cfg.request, {
        $input: item.sequence ?? item.input,
        $options: item.options ?? {},
        $task: task,
      });
      try {
        if (total > MAX_RESULT_BYTES)
          throw new ItemFailure('RESPONSE_TOO_LARGE', `the batch's answers exceed ${MAX_RESULT_BYTES} bytes in all`);
        const a = await this.predictCall(body, signal);
        total += a.bytes;
        outputs.push(asOutput(this.outputOf(a.json)));
      } catch (e) {
        if (signal.aborted) throw e;
        outputs.push({
          error:
            e instanceof ItemFailure
              ? { code: e.code, message: e.message }
              : { code: 'PREDICTION_FAILED', message: (e as Error).message },
        });
      }
    }
    return outputs;
  }

  private async predictList(task: string, items: WorkItem[], signal: AbortSignal): Promise<ItemOutput[]> {
    // One options object for the list: the first item's (a server taking lists takes one set).
    const body = fillTemplate(this.cfg.request, {
      $inputs: items.map((i) => i.sequence ?? i.input),
      $options: items[0]?.options ?? {},
      $task: task,
    });
    const a = await this.predictCall(body, signal);
    const list = this.outputOf(a.json);
    if (!Array.isArray(list) || list.length !== items.length) {
      throw new ItemFailure(
        'PREDICTION_FAILED',
        `the model's server answered ${Array.isArray(list) ? `${list.length} outputs` : 'no list'} at "${this.cfg.response}" for ${items.length} inputs`,
      );
    }
    return list.map(asOutput);
  }

  private outputOf(json: unknown): unknown {
    const v = atPath(json, this.cfg.response);
    if (v === undefined)
      throw new ItemFailure('PREDICTION_FAILED', `the model's server answered without "${this.cfg.response}"`);
    return v;
  }

  private async predictCall(body: unknown, signal: AbortSignal): Promise<{ json: unknown; bytes: number }> {
    let a: Answer;
    try {
      a = await this.call(
        this.cfg.method,
        this.cfg.predict_path,
        JSON.stringify(body),
        0,
        this.cfg.max_response_bytes,
        signal,
      );
    } catch (e) {
      if (e instanceof ItemFailure) throw e;
      throw new ItemFailure('PREDICTION_FAILED', `the model's server did not answer: ${(e as Error).message}`);
    }
    const text = a.body.toString('utf8');
    if (a.status < 200 || a.status >= 300) {
      const code = a.status === 400 || a.status === 422 ? 'INVALID_REQUEST' : 'PREDICTION_FAILED';
      throw new ItemFailure(code, `the model's server answered ${a.status}: ${text.slice(0, ERROR_SNIPPET)}`);
    }
    try {
      return { json: JSON.parse(text), bytes: a.body.length };
    } catch {
      throw new ItemFailure(
        'PREDICTION_FAILED',
        `the model's server answered ${a.status} with something that is not JSON: ${text.slice(0, ERROR_SNIPPET)}`,
      );
    }
  }

  /** One HTTP exchange with the server on loopback; the answer's body is cut off (and refused) past maxBytes. */
  private call(
    method: string,
    path: string,
    body: string | undefined,
    timeoutMs: number,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = httpRequest(
        { host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent, signal },
        (res) => {
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > maxBytes) {
            res.destroy();
            return reject(
              new ItemFailure(
                'RESPONSE_TOO_LARGE',
                `the model's server answered ${declared} bytes, more than max_response_bytes (${maxBytes})`,
              ),
            );
          }
          const chunks: Buffer[] = [];
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (n > maxBytes) {
              res.destroy();
              req.destroy();
              reject(
                new ItemFailure(
                  'RESPONSE_TOO_LARGE',
                  `the model's server answered more than max_response_bytes (${maxBytes} bytes)`,
                ),
              );
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  private async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    if (this.healthTimer) clearTimeout(this.healthTimer);
    if (!this.busy) this.finishShutdown();
  }

  /** The current batch is done: the server gets SIGTERM (SIGKILL after 3 s), then the adapter exits. */
  private finishShutdown(): void {
    const s = this.server;
    if (!s || s.exitCode !== null || s.signalCode !== null) process.exit(0);
    s.kill('SIGTERM');
    setTimeout(() => {
      s.kill('SIGKILL');
      process.exit(0);
    }, 3000).unref();
  }
}

function configFromEnv(): HttpAdapterConfig {
  const raw = process.env.ISOMODEL_HTTP;
  if (!raw) throw new Error('ISOMODEL_HTTP is not set (the gateway sets it for runtime http)');
  return JSON.parse(raw) as HttpAdapterConfig;
}

// Run when executed, not when imported for its helpers.
if (process.argv[1]?.endsWith('http-adapter.js')) {
  let cfg: HttpAdapterConfig;
  try {
    cfg = configFromEnv();
  } catch (e) {
    send({ op: 'fatal', code: 'MODEL_NOT_LOADED', message: (e as Error).message });
    process.exit(2);
  }
  void new HttpAdapter(cfg).run();
}
