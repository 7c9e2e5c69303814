// API keys in a shared state database: the same table and rules as src/security/keys.ts, for
// gateways that share a PostgreSQL server. Every request checks its key, so `verify` reads a
// copy of the table held in memory; the copy is reloaded when another gateway announces a
// change (changes.ts: NOTIFY, else polling), so a key revoked anywhere stops working everywhere
// within the feed's poll interval at worst. Writes go to the database first, then the copy.
import {
  INSERT_KEY,
  keyNameTaken,
  listKeys,
  mintKey,
  verifyKey,
  type ApiKey,
  type ConfiguredKey,
  type KeyRow,
  type Scope,
} from '../../security/keys.js';
import type { SqlClient } from '../sql.js';
import { notify, openMirror, type ChangeFeed } from './changes.js';

export const KEY_MIGRATIONS = [
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
     rate_limit INTEGER, created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT
   )`,
];

type Row = KeyRow;

export class SharedKeyStore {
  /** sha256 → row, every key in the table (revoked ones too, so that they answer null). */
  private bySha = new Map<string, Row>();
  private readonly touchedAt = new Map<string, number>();

  private constructor(
    private readonly sql: SqlClient,
    private readonly configured: ConfiguredKey[],
    private readonly onError: (message: string) => void,
  ) {}

  static open(
    sql: SqlClient,
    configured: ConfiguredKey[] = [],
    feed?: ChangeFeed,
    onError: (m: string) => void = () => undefined,
  ): Promise<SharedKeyStore> {
    return openMirror(
      sql,
      { namespace: 'auth', migrations: KEY_MIGRATIONS },
      feed,
      'keys',
      () => new SharedKeyStore(sql, configured, onError),
    );
  }

  /** Reads the table again (another gateway changed it). */
  async reload(): Promise<void> {
    const rows = await this.sql.query<Row>(
      'SELECT id, name, sha256, scopes, rate_limit, created_at, revoked_at, last_used_at FROM api_keys',
    );
    this.bySha = new Map(rows.map((r) => [r.sha256, r]));
  }

  any(): boolean {
    if (this.configured.length > 0) return true;
    for (const r of this.bySha.values()) if (!r.revoked_at) return true;
    return false;
  }

  async create(name: string, scopes: Scope[], rateLimit?: number): Promise<{ key: string; record: ApiKey }> {
    const k = mintKey(name, scopes, rateLimit);
    try {
      await this.sql.tx(async (q) => {
        await q.run(INSERT_KEY, k.values);
        await notify(q, 'keys');
      });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === '23505' || /UNIQUE/.test((e as Error).message)) throw keyNameTaken(name);
      throw e;
    }
    await this.reload();
    return { key: k.key, record: k.record };
  }

  async revoke(idOrName: string): Promise<boolean> {
    const n = await this.sql.tx(async (q) => {
      const changed = await q.run(
        'UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL',
        [new Date().toISOString(), idOrName, idOrName],
      );
      if (changed) await notify(q, 'keys');
      return changed;
    });
    await this.reload();
    return n > 0;
  }

  async list(): Promise<ApiKey[]> {
    const rows = await this.sql.query<Omit<Row, 'sha256'>>(
      'SELECT id, name, scopes, rate_limit, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at',
    );
    return listKeys(rows, this.configured);
  }

  /** The active key a presented secret belongs to, or null: from memory, no database round trip. */
  verify(secret: string): ApiKey | null {
    return verifyKey(
      secret,
      this.configured,
      (d) => this.bySha.get(d),
      this.touchedAt,
      // Never on the request's path, never its failure.
      (id, now) =>
        void this.sql
          .run('UPDATE api_keys SET last_used_at = ? WHERE id = ?', [new Date(now).toISOString(), id])
          .catch((e: Error) => this.onError(`cannot record a key's last use: ${e.message}`)),
    );
  }
}
