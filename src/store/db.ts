// SQLite state under the state dir: the model registry and the request log.
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RequestLogWriter, toLogRow, type RequestLogEntry } from './request-log-writer.js';
import { describeStorageFault, StorageHealth, storageFaultCode, trackStorage } from './storage-fault.js';

const MIGRATIONS: string[] = [
  `CREATE TABLE models (
     name TEXT PRIMARY KEY,
     version TEXT NOT NULL,
     dir TEXT NOT NULL,
     runtime TEXT NOT NULL,
     manifest TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     state TEXT NOT NULL,
     last_error TEXT,
     loaded_at TEXT,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE request_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     request_id TEXT NOT NULL,
     at TEXT NOT NULL,
     model TEXT NOT NULL,
     version TEXT,
     task TEXT,
     route TEXT NOT NULL,
     status TEXT NOT NULL,
     error_code TEXT,
     sequences INTEGER NOT NULL,
     latency_ms REAL NOT NULL,
     client TEXT
   );
   CREATE INDEX request_log_model_at ON request_log(model, at);`,
];

export interface ModelRow {
  name: string;
  version: string;
  dir: string;
  runtime: string;
  manifest: string;
  fingerprint: string;
  state: string;
  last_error: string | null;
  loaded_at: string | null;
  updated_at: string;
}

export type { RequestLogEntry } from './request-log-writer.js';

/** The state database's file name in the state dir. */
export const STATE_DB_FILE = 'isomodel.db';

const FLUSH_INTERVAL_MS = 200;
const FLUSH_AT = 500;
const STORAGE_REPORT_MS = 10_000;

/**
 * The state database could not be opened or set up at start: says which file, what is wrong,
 * and the way out. The file is left as it is: nothing is overwritten or recreated.
 */
export class StateStoreError extends Error {
  constructor(
    readonly file: string,
    readonly code: string,
    cause: string,
  ) {
    super(explainOpenFailure(file, code, cause));
    this.name = 'StateStoreError';
  }
}

function explainOpenFailure(file: string, code: string, cause: string): string {
  const dir = join(file, '..');
  const head = `cannot use the state database ${file}: ${cause} (${code}). It was left as it is.`;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    const parts = [file, `${file}-wal`, `${file}-shm`].filter((p) => p === file || existsSync(p));
    const mv = parts.map((p) => `mv '${p}' '${p}.broken-${stamp}'`).join(' && ');
    return (
      `${head} Restore it from a backup (with the gateway stopped), or move it aside and start with an empty state ` +
      `(API keys, traffic splits, jobs and history start over): ${mv}. Or point --state-dir (ISOMODEL_STATE_DIR) at another folder.`
    );
  }
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code === 'EACCES' ||
    code === 'EPERM' ||
    code === 'ENOTDIR' ||
    code === 'EISDIR'
  ) {
    return `${head} Check that it is a file (or absent) and that it and ${dir} can be read and written by this user (uid ${process.getuid?.() ?? '?'}), or point --state-dir (ISOMODEL_STATE_DIR) elsewhere.`;
  }
  const fault = storageFaultCode({ code });
  if (fault) return `${head} ${describeStorageFault(fault, dir)}: free space or fix the file system, then start again.`;
  return `${head} Point --state-dir (ISOMODEL_STATE_DIR) at another folder to start with an empty state.`;
}

export class StateStore {
  readonly db: Database.Database;
  /** Whether the state dir can be written now (health checks, STORAGE_UNAVAILABLE answers). */
  readonly storage: StorageHealth;
  private readonly untrack: () => void;
  /** Rows not yet handed to the writer thread (request-log-writer.ts's column order). */
  private pending: unknown[][] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly logWriter: RequestLogWriter;

  /** `onError`: request-log rows that could not be written, and why (default: a process warning). */
  constructor(
    stateDir: string,
    file = STATE_DB_FILE,
    onError: (message: string) => void = (m) => process.emitWarning(m),
  ) {
    const path = join(stateDir, file);
    let db: Database.Database | null = null;
    try {
      // The gateway's alone (also when a CLI command creates it before the first serve): 0700, and
      // a new database 0600 (SQLite gives its -wal/-shm files the database's mode).
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const fresh = !existsSync(path);
      db = new Database(path);
      if (fresh) chmodSync(path, 0o600);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 5000');
      this.db = db;
      this.migrate();
    } catch (e) {
      db?.close();
      throw StateStore.openError(path, e) ?? e;
    }
    this.storage = new StorageHealth(stateDir, () => this.db);
    this.untrack = trackStorage(this.storage);
    // A row the writer thread could not store is reported; a storage fault also degrades health,
    // and while it lasts its reports are folded into one every STORAGE_REPORT_MS (a batch fails
    // every FLUSH_INTERVAL_MS under load).
    let folded = 0;
    let reportedAt = 0;
    this.logWriter = new RequestLogWriter(path, (message, code) => {
      if (!(code && this.storage.note({ code, message }))) return onError(message);
      const now = Date.now();
      if (now - reportedAt < STORAGE_REPORT_MS) {
        folded++;
        return;
      }
      onError(folded ? `${message} (and ${folded} more such reports since the last one)` : message);
      folded = 0;
      reportedAt = now;
    });
  }

  /**
   * The StateStoreError for an error met while opening or setting up the database at `file`
   * (a SQLite or file-system error), else null. `isomodel serve` also passes what fails later at
   * start through it (features set up their own tables: keys, audit, traffic, monitor), SQLite's only.
   */
  static openError(file: string, e: unknown, sqliteOnly = false): StateStoreError | null {
    if (e instanceof StateStoreError) return e;
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !(code.startsWith('SQLITE_') || (!sqliteOnly && /^E[A-Z]+$/.test(code))))
      return null;
    return new StateStoreError(file, code, (e as Error).message);
  }

  /**
   * Runs a write that must not fail the request it serves (an API key's last_used_at, a log
   * row): a storage fault is noted on the store's health and swallowed; any other error is thrown.
   */
  bestEffort<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      if (this.storage.note(e)) return undefined;
      throw e;
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    // Written only inside transactions that are rolled back (storage-fault.ts's probe).
    this.db.exec('CREATE TABLE IF NOT EXISTS storage_probe (b BLOB)');
  }

  /**
   * Lets a feature (jobs, monitor, auth…) own its tables: its migrations run once each, in
   * order, tracked under its namespace, so features never edit each other's schema list.
   */
  migrateNamespace(namespace: string, migrations: string[]): void {
    const row = this.db.prepare('SELECT version FROM schema_migrations WHERE namespace = ?').get(namespace) as
      { version: number } | undefined;
    for (let v = row?.version ?? 0; v < migrations.length; v++) {
      this.db.transaction(() => {
        this.db.exec(migrations[v]!);
        this.db
          .prepare(
            'INSERT INTO schema_migrations (namespace, version) VALUES (?, ?) ON CONFLICT(namespace) DO UPDATE SET version = excluded.version',
          )
          .run(namespace, v + 1);
      })();
    }
  }

  upsertModel(row: Omit<ModelRow, 'updated_at'>): void {
    this.db
      .prepare(
        `INSERT INTO models (name, version, dir, runtime, manifest, fingerprint, state, last_error, loaded_at, updated_at)
         VALUES (@name, @version, @dir, @runtime, @manifest, @fingerprint, @state, @last_error, @loaded_at, @updated_at)
         ON CONFLICT(name) DO UPDATE SET version=excluded.version, dir=excluded.dir, runtime=excluded.runtime,
           manifest=excluded.manifest, fingerprint=excluded.fingerprint, state=excluded.state,
           last_error=excluded.last_error, loaded_at=excluded.loaded_at, updated_at=excluded.updated_at`,
      )
      .run({ ...row, updated_at: new Date().toISOString() });
  }

  deleteModel(name: string): void {
    this.db.prepare('DELETE FROM models WHERE name = ?').run(name);
  }

  listModels(): ModelRow[] {
    return this.db.prepare('SELECT * FROM models ORDER BY name').all() as ModelRow[];
  }

  /** Buffered: the hot path only appends to an array; a timer hands the batch to the writer thread. */
  logRequest(entry: RequestLogEntry): void {
    this.pending.push(toLogRow(entry, Date.now()));
    if (this.pending.length >= FLUSH_AT) this.handOver();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.handOver(), FLUSH_INTERVAL_MS);
      this.flushTimer.unref();
    }
  }

  /** Hands buffered rows to the writer thread without waiting. */
  private handOver(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.logWriter.write(rows);
  }

  /** Every request logged so far is in the table when this returns (readers call it first). */
  flush(): void {
    this.handOver();
    this.logWriter.sync();
  }

  recentRequests(limit = 100, model?: string): Record<string, unknown>[] {
    this.flush();
    if (model)
      return this.db
        .prepare('SELECT * FROM request_log WHERE model = ? ORDER BY id DESC LIMIT ?')
        .all(model, limit) as Record<string, unknown>[];
    return this.db.prepare('SELECT * FROM request_log ORDER BY id DESC LIMIT ?').all(limit) as Record<
      string,
      unknown
    >[];
  }

  close(): void {
    this.flush();
    this.logWriter.close();
    this.untrack();
    this.db.close();
  }
}
