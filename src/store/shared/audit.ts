// The audit log in a shared state database: the table of src/security/audit.ts, one log for
// every gateway. An entry is written without holding up the request it records; a write that
// fails is reported, not thrown.
import {
  AUDIT_INSERT,
  auditResult,
  auditRow,
  auditSelect,
  type AuditEntry,
  type AuditQuery,
} from '../../security/audit.js';
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
    const p = this.sql
      .run(AUDIT_INSERT, auditRow(e))
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
    const { sql, args } = auditSelect(q);
    return (await this.sql.query(sql, args)).map(auditResult);
  }
}
