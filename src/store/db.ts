// SQLite state under the state dir: the model registry and the request log.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RequestLogWriter, toLogRow } from './request-log-writer.js';

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

export interface RequestLogEntry {
  request_id: string;
  model: string;
  version?: string;
  task?: string;
  route: string;
  status: 'success' | 'error';
  error_code?: string;
  sequences: number;
  latency_ms: number;
  client?: string;
}

const FLUSH_INTERVAL_MS = 200;
const FLUSH_AT = 500;

export class StateStore {
  readonly db: Database.Database;
  /** Rows not yet handed to the writer thread (request-log-writer.ts's column order). */
  private pending: unknown[][] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly logWriter: RequestLogWriter;

  /** `onError`: request-log rows that could not be written, and why (default: a process warning). */
  constructor(stateDir: string, file = 'isomodel.db', onError: (message: string) => void = (m) => process.emitWarning(m)) {
    mkdirSync(stateDir, { recursive: true });
    const path = join(stateDir, file);
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.logWriter = new RequestLogWriter(path, onError);
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
  }

  /**
   * Lets a feature (jobs, monitor, auth…) own its tables: its migrations run once each, in
   * order, tracked under its namespace, so features never edit each other's schema list.
   */
  migrateNamespace(namespace: string, migrations: string[]): void {
    const row = this.db.prepare('SELECT version FROM schema_migrations WHERE namespace = ?').get(namespace) as { version: number } | undefined;
    for (let v = row?.version ?? 0; v < migrations.length; v++) {
      this.db.transaction(() => {
        this.db.exec(migrations[v]!);
        this.db.prepare('INSERT INTO schema_migrations (namespace, version) VALUES (?, ?) ON CONFLICT(namespace) DO UPDATE SET version = excluded.version').run(namespace, v + 1);
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
    if (model) return this.db.prepare('SELECT * FROM request_log WHERE model = ? ORDER BY id DESC LIMIT ?').all(model, limit) as Record<string, unknown>[];
    return this.db.prepare('SELECT * FROM request_log ORDER BY id DESC LIMIT ?').all(limit) as Record<string, unknown>[];
  }

  close(): void {
    this.flush();
    this.logWriter.close();
    this.db.close();
  }
}
