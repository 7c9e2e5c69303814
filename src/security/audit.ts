// Audit log: every admin action and every denied request, queryable, in SQLite.
import type Database from 'better-sqlite3';
import type { StateStore } from '../store/db.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string;
  outcome: 'allowed' | 'denied' | 'failed';
  status: number;
  client?: string;
  request_id?: string;
  details?: string;
}

export interface AuditQuery {
  limit?: number;
  actor?: string;
  action?: string;
  outcome?: string;
  since?: string;
}

export class AuditLog {
  private readonly insert: Database.Statement;

  constructor(private readonly store: StateStore) {
    store.migrateNamespace('audit', [
      `CREATE TABLE audit_log (
         id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
         target TEXT, outcome TEXT NOT NULL, status INTEGER NOT NULL, client TEXT, request_id TEXT, details TEXT
       );
       CREATE INDEX audit_log_at ON audit_log(at);`,
    ]);
    this.insert = store.db.prepare('INSERT INTO audit_log (at, actor, action, target, outcome, status, client, request_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  }

  record(e: AuditEntry): void {
    this.insert.run(new Date().toISOString(), e.actor, e.action, e.target ?? null, e.outcome, e.status, e.client ?? null, e.request_id ?? null, e.details ?? null);
  }

  query(q: AuditQuery = {}): Record<string, unknown>[] {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of [['actor', q.actor], ['action', q.action], ['outcome', q.outcome]] as const) {
      if (v) {
        where.push(`${col} = ?`);
        args.push(v);
      }
    }
    if (q.since) {
      where.push('at >= ?');
      args.push(q.since);
    }
    const limit = Math.min(Math.max(1, q.limit ?? 100), 1000);
    return this.store.db.prepare(`SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`).all(...args, limit) as Record<string, unknown>[];
  }
}
