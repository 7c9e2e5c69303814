// The audit log in a shared state database: the table of src/security/audit.ts, one log for
// every gateway. An entry is written without holding up the request it records; a write that
// fails is reported, not thrown.
import type { AuditEntry, AuditQuery } from '../../security/audit.js';
import type { Migration, SqlClient } from '../sql.js';

export const AUDIT_MIGRATIONS: Migration[] = [
  {
    sqlite: `CREATE TABLE audit_log (
       id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
       target TEXT, outcome TEXT NOT NULL, status INTEGER NOT NULL, client TEXT, request_id TEXT, details TEXT
     );
     CREATE INDEX audit_log_at ON audit_log(at);`,
    postgres: `CREATE TABLE audit_log (
       id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
       target TEXT, outcome TEXT NOT NULL, status INTEGER NOT NULL, client TEXT, request_id TEXT, details TEXT
     );
     CREATE INDEX audit_log_at ON audit_log(at);`,
  },
  `ALTER TABLE audit_log ADD COLUMN key_id TEXT;
   ALTER TABLE audit_log ADD COLUMN route TEXT;
   ALTER TABLE audit_log ADD COLUMN params TEXT;`,
];

export class SharedAuditLog {
  private readonly pending = new Set<Promise<void>>();

  private constructor(
    private readonly sql: SqlClient,
    private readonly onError: (message: string) => void,
  ) {}

  static async open(sql: SqlClient, onError: (message: string) => void = () => undefined): Promise<SharedAuditLog> {
    await sql.migrate('audit', AUDIT_MIGRATIONS);
    return new SharedAuditLog(sql, onError);
  }

  record(e: AuditEntry): void {
    const entries = e.params ? Object.entries(e.params).slice(0, 10) : [];
    const params = entries.length > 0 ? JSON.stringify(Object.fromEntries(entries.map(([k, v]) => [k.slice(0, 50), String(v).slice(0, 200)]))) : null;
    const p = this.sql
      .run('INSERT INTO audit_log (at, actor, key_id, action, route, params, target, outcome, status, client, request_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [
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
      ])
      .then(
        () => undefined,
        (err: Error) => this.onError(`audit entry ${e.action} by ${e.actor} not stored: ${err.message}`),
      )
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Resolves once every entry recorded so far is stored (or reported). */
  async flush(): Promise<void> {
    await Promise.all(this.pending);
  }

  async query(q: AuditQuery = {}): Promise<Record<string, unknown>[]> {
    await this.flush();
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of [['actor', q.actor], ['action', q.action], ['outcome', q.outcome], ['key_id', q.key_id]] as const) {
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
    const rows = await this.sql.query(`SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`, [...args, limit]);
    return rows.map((r) => ({ ...r, id: Number(r.id), params: typeof r.params === 'string' ? (JSON.parse(r.params) as unknown) : null }));
  }
}
