// API keys in a shared state database: the same table and rules as src/security/keys.ts, for
// gateways that share a PostgreSQL server. Every request checks its key, so `verify` reads a
// copy of the table held in memory; the copy is reloaded when another gateway announces a
// change (changes.ts: NOTIFY, else polling), so a key revoked anywhere stops working everywhere
// within the feed's poll interval at worst. Writes go to the database first, then the copy.
import { randomBytes } from 'node:crypto';
import {
  digest,
  KEY_PREFIX,
  sameDigest,
  SCOPES,
  TOUCH_EVERY_MS,
  type ApiKey,
  type ConfiguredKey,
  type Scope,
} from '../../security/keys.js';
import type { SqlClient } from '../sql.js';
import { notify, type ChangeFeed } from './changes.js';

export const KEY_MIGRATIONS = [
  `CREATE TABLE api_keys (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
     rate_limit INTEGER, created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT
   )`,
];

type Row = Omit<ApiKey, 'scopes' | 'source'> & { scopes: string; sha256: string };

export class SharedKeyStore {
  /** sha256 → row, every key in the table (revoked ones too, so that they answer null). */
  private bySha = new Map<string, Row>();
  private readonly touchedAt = new Map<string, number>();

  private constructor(
    private readonly sql: SqlClient,
    private readonly configured: ConfiguredKey[],
    private readonly onError: (message: string) => void,
  ) {}

  static async open(
    sql: SqlClient,
    configured: ConfiguredKey[] = [],
    feed?: ChangeFeed,
    onError: (m: string) => void = () => undefined,
  ): Promise<SharedKeyStore> {
    await sql.migrate('auth', KEY_MIGRATIONS);
    const s = new SharedKeyStore(sql, configured, onError);
    await s.reload();
    feed?.on('keys', () => s.reload());
    return s;
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
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name))
      throw new Error('key names use letters, digits, ".", "_" and "-" (at most 64)');
    if (scopes.length === 0 || !scopes.every((s) => (SCOPES as readonly string[]).includes(s)))
      throw new Error(`scopes must be among ${SCOPES.join(', ')}`);
    const id = randomBytes(6).toString('hex');
    const key = `${KEY_PREFIX}${id}_${randomBytes(24).toString('base64url')}`;
    const created_at = new Date().toISOString();
    try {
      await this.sql.tx(async (q) => {
        await q.run(
          'INSERT INTO api_keys (id, name, sha256, scopes, rate_limit, created_at) VALUES (?, ?, ?, ?, ?, ?)',
          [id, name, digest(key), scopes.join(','), rateLimit ?? null, created_at],
        );
        await notify(q, 'keys');
      });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === '23505' || /UNIQUE/.test((e as Error).message))
        throw new Error(`a key named "${name}" already exists`);
      throw e;
    }
    await this.reload();
    return {
      key,
      record: {
        id,
        name,
        scopes,
        rate_limit: rateLimit ?? null,
        created_at,
        revoked_at: null,
        last_used_at: null,
        source: 'db',
      },
    };
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
    return [
      ...rows.map((r) => ({ ...r, scopes: r.scopes.split(',') as Scope[], source: 'db' as const })),
      ...this.configured.map((k) => ({
        id: `config:${k.name}`,
        name: k.name,
        scopes: k.scopes,
        rate_limit: k.rate_limit ?? null,
        created_at: '',
        revoked_at: null,
        last_used_at: null,
        source: 'config' as const,
      })),
    ];
  }

  /** The active key a presented secret belongs to, or null: from memory, no database round trip. */
  verify(secret: string): ApiKey | null {
    if (!secret.startsWith(KEY_PREFIX) && this.configured.length === 0) return null;
    const d = digest(secret);
    for (const k of this.configured) {
      if (sameDigest(d, k.sha256))
        return {
          id: `config:${k.name}`,
          name: k.name,
          scopes: k.scopes,
          rate_limit: k.rate_limit ?? null,
          created_at: '',
          revoked_at: null,
          last_used_at: null,
          source: 'config',
        };
    }
    const row = this.bySha.get(d);
    if (!row || row.revoked_at || !sameDigest(d, row.sha256)) return null;
    const now = Date.now();
    if (now - (this.touchedAt.get(row.id) ?? 0) >= TOUCH_EVERY_MS) {
      this.touchedAt.set(row.id, now);
      // Never on the request's path, never its failure.
      this.sql
        .run('UPDATE api_keys SET last_used_at = ? WHERE id = ?', [new Date(now).toISOString(), row.id])
        .catch((e: Error) => this.onError(`cannot record a key's last use: ${e.message}`));
    }
    const { sha256: _drop, ...rest } = row;
    return { ...rest, scopes: row.scopes.split(',') as Scope[], source: 'db' };
  }
}
