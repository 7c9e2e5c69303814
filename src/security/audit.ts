// Audit log: every admin action (allowed, denied or failed) and every denied request, with who
// (key id and name), what (the matched route pattern and its parameters), from where and how it
// ended; queryable, in SQLite, pruned by src/store/retention.ts.
import type Database from 'better-sqlite3';
import type { StateStore } from '../store/db.js';

export interface AuditEntry {
  /** The key's name ('anonymous' with auth off, 'unknown' when no valid key was presented). */
  actor: string;
  /** The key's id, when a valid key was presented. */
  key_id?: string;
  action: string;
  /** The route pattern that matched (e.g. `/v1/models/:name/load`), never the raw URL. */
  route?: string;
  /** The route's decoded path parameters. */
  params?: Record<string, string>;
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
  key_id?: string;
  since?: string;
}

/** Where admin actions are recorded: AuditLog (SQLite) or SharedAuditLog (PostgreSQL: src/store/shared/audit.ts). */
export interface AuditSink {
  record(e: AuditEntry): void;
  query(q?: AuditQuery): Record<string, unknown>[] | Promise<Record<string, unknown>[]>;
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
      `ALTER TABLE audit_log ADD COLUMN key_id TEXT;
       ALTER TABLE audit_log ADD COLUMN route TEXT;
       ALTER TABLE audit_log ADD COLUMN params TEXT;`,
    ]);
    this.insert = store.db.prepare(AUDIT_INSERT);
  }

  record(e: AuditEntry): void {
    this.insert.run(...auditRow(e));
  }

  query(q: AuditQuery = {}): Record<string, unknown>[] {
    const { sql, args } = auditSelect(q);
    const rows = this.store.db.prepare(sql).all(...args) as Record<string, unknown>[];
    return rows.map(auditResult);
  }
}

/** The insert's values for one entry, bounded field by field so the stored JSON always parses back. */
export function auditRow(e: AuditEntry): unknown[] {
  const entries = e.params ? Object.entries(e.params).slice(0, 10) : [];
  const params =
    entries.length > 0
      ? JSON.stringify(Object.fromEntries(entries.map(([k, v]) => [k.slice(0, 50), String(v).slice(0, 200)])))
      : null;
  return [
    new Date().toISOString(),
    e.actor.slice(0, 100),
    e.key_id ?? null,
    e.action.slice(0, 200),
    e.route ?? null,
    params,
    e.target?.slice(0, 200) ?? null,
    e.outcome,
    e.status,
    e.client ?? null,
    e.request_id ?? null,
    e.details?.slice(0, 1000) ?? null,
  ];
}

export const AUDIT_INSERT =
  'INSERT INTO audit_log (at, actor, key_id, action, route, params, target, outcome, status, client, request_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/** The newest entries matching a query, at most 1000 (the same SQL for SQLite and PostgreSQL). */
export function auditSelect(q: AuditQuery): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  for (const [col, v] of [
    ['actor', q.actor],
    ['action', q.action],
    ['outcome', q.outcome],
    ['key_id', q.key_id],
  ] as const) {
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
  return {
    sql: `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    args: [...args, limit],
  };
}

/** A stored row as the API answers it: params parsed back, the id a number (PostgreSQL's BIGSERIAL comes as text). */
export function auditResult(r: Record<string, unknown>): Record<string, unknown> {
  return { ...r, id: Number(r.id), params: typeof r.params === 'string' ? (JSON.parse(r.params) as unknown) : null };
}
