// Per-replica log files: every stderr line of a replica (already cut to worker_log.max_line_chars
// by the limiter) goes to `<dir>/<model>/<replica>.log` as `<ISO time> <line>`, written in
// batches. A file past max_file_bytes rotates (`.log.1` … `.log.<keep>`, the oldest dropped), and a
// model's folder past max_model_bytes loses its oldest files: replicas come and go (scaling,
// restarts) and their files must not pile up. Read back by GET /v1/models/{name}/logs.
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface LogFileLimits {
  max_file_bytes: number;
  /** Rotated files kept per replica besides the current one. */
  keep: number;
  max_model_bytes: number;
}

const FLUSH_MS = 200;
const FLUSH_BYTES = 64 * 1024;
export const REPLICA_ID = /^[A-Za-z0-9._-]{1,64}$/;
const LOG_FILE = /^([A-Za-z0-9._-]{1,64})\.log(?:\.(\d+))?$/;

class ReplicaLogFile {
  private fd: number | null = null;
  private size = 0;
  private buffer: string[] = [];
  private buffered = 0;
  private timer: NodeJS.Timeout | null = null;
  private opened = false;

  constructor(
    private readonly owner: ReplicaLogs,
    private readonly dir: string,
    private readonly replica: string,
  ) {}

  private get path(): string {
    return join(this.dir, `${this.replica}.log`);
  }

  write(line: string): void {
    const text = `${new Date().toISOString()} ${line}\n`;
    this.buffer.push(text);
    this.buffered += text.length;
    if (this.buffered >= FLUSH_BYTES) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.buffer.length) return;
    const data = Buffer.from(this.buffer.join(''));
    this.buffer = [];
    this.buffered = 0;
    try {
      if (this.fd === null) {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        // Replica ids restart at r1 with each gateway: what an earlier run wrote under this id
        // moves to .log.1, so one file never mixes two replicas.
        if (!this.opened && (statSync(this.path, { throwIfNoEntry: false })?.size ?? 0) > 0) this.rotate();
        this.opened = true;
        this.fd = openSync(this.path, 'a', 0o600);
        this.size = fstatSync(this.fd).size;
      }
      writeSync(this.fd, data);
      this.size += data.length;
      if (this.size >= this.owner.limits.max_file_bytes) this.rotate();
    } catch (e) {
      this.owner.onError(`replica log ${this.path}: ${(e as Error).message}`);
    }
  }

  private rotate(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const keep = this.owner.limits.keep;
    rmSync(`${this.path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--)
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    if (keep >= 1) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    this.owner.enforceModelCap(this.dir);
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export class ReplicaLogs {
  private readonly open = new Map<string, ReplicaLogFile>();

  constructor(
    readonly dir: string,
    readonly limits: LogFileLimits,
    readonly onError: (message: string) => void = () => undefined,
  ) {}

  modelDir(model: string): string {
    return join(this.dir, model);
  }

  /** The line sink of one replica's file (opened on its first line). */
  sink(model: string, replica: string): (line: string) => void {
    if (!REPLICA_ID.test(replica)) return () => undefined;
    const key = `${model}/${replica}`;
    let f = this.open.get(key);
    if (!f) {
      f = new ReplicaLogFile(this, this.modelDir(model), replica);
      this.open.set(key, f);
    }
    const file = f;
    return (line) => file.write(line);
  }

  /** Writes what is buffered (before reading the files back). */
  flush(model?: string): void {
    for (const [key, f] of this.open) if (!model || key.startsWith(`${model}/`)) f.flush();
  }

  /** Oldest files of a model's folder go until it is under max_model_bytes (current files last). */
  enforceModelCap(dir: string): void {
    const files = listLogFiles(dir).map((f) => ({ ...f, st: statSync(join(dir, f.file)) }));
    let total = files.reduce((a, f) => a + f.st.size, 0);
    // Rotated files first (oldest first), then current ones.
    files.sort((a, b) => (a.index === 0 ? 1 : 0) - (b.index === 0 ? 1 : 0) || a.st.mtimeMs - b.st.mtimeMs);
    for (const f of files) {
      if (total <= this.limits.max_model_bytes) break;
      if (f.index === 0) continue;
      rmSync(join(dir, f.file), { force: true });
      total -= f.st.size;
    }
  }

  close(): void {
    for (const f of this.open.values()) f.close();
    this.open.clear();
  }
}

/** The log files of a model's folder: replica, rotation index (0 = current). */
export function listLogFiles(dir: string): { file: string; replica: string; index: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((file) => {
    const m = LOG_FILE.exec(file);
    return m ? [{ file, replica: m[1]!, index: Number(m[2] ?? 0) }] : [];
  });
}

/** The last `n` lines of a file, read backwards in chunks (never the whole file). */
export function tailFile(path: string, n: number): string[] {
  if (n <= 0) return [];
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    let pos = fstatSync(fd).size;
    let text = '';
    const chunk = Buffer.alloc(64 * 1024);
    while (pos > 0) {
      const len = Math.min(chunk.length, pos);
      pos -= len;
      readSync(fd, chunk, 0, len, pos);
      text = chunk.toString('utf8', 0, len) + text;
      // n lines need n+1 newlines (the last line ends with one).
      if (text.split('\n').length > n + 1) break;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (pos > 0) lines.shift(); // cut mid-line
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

export interface LogLine {
  replica: string;
  time: string;
  line: string;
}

export function parseLogLine(replica: string, raw: string): LogLine {
  const sp = raw.indexOf(' ');
  return sp > 0 ? { replica, time: raw.slice(0, sp), line: raw.slice(sp + 1) } : { replica, time: '', line: raw };
}

/** The last `n` lines of a model's replicas (one replica, or all), oldest first, rotated files included. */
export function tailModel(dir: string, n: number, replica?: string | readonly string[]): LogLine[] {
  const only = replica === undefined ? null : new Set(typeof replica === 'string' ? [replica] : replica);
  const files = listLogFiles(dir).filter((f) => !only || only.has(f.replica));
  const replicas = [...new Set(files.map((f) => f.replica))];
  const out: LogLine[] = [];
  for (const r of replicas) {
    const mine = files.filter((f) => f.replica === r).sort((a, b) => a.index - b.index);
    let lines: string[] = [];
    for (const f of mine) {
      if (lines.length >= n) break;
      lines = [...tailFile(join(dir, f.file), n - lines.length), ...lines];
    }
    out.push(...lines.map((l) => parseLogLine(r, l)));
  }
  out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return out.slice(-n);
}
