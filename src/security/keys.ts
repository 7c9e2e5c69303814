// API keys: random secrets shown once, stored only as SHA-256 digests, with scopes.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { StateStore } from '../store/db.js';

export const SCOPES = ['predict', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  id: string;
  name: string;
  scopes: Scope[];
  /** Requests per rate-limit window for this key; null = the gateway default. */
  rate_limit: number | null;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  source: 'db' | 'config';
}

/** A key configured in the config file: the digest, never the secret, belongs there. */
export interface ConfiguredKey {
  name: string;
  sha256: string;
  scopes: Scope[];
  rate_limit?: number;
}

export const KEY_PREFIX = 'iso_';
/** How often a key's last_used_at is written (it is on every request's path). */
export const TOUCH_EVERY_MS = 60_000;

export function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * What the gateway checks keys against: KeyStore (the embedded SQLite table, synchronous) or
 * SharedKeyStore (PostgreSQL, shared by several gateways: src/store/shared/keys.ts). `verify`
 * and `any` are on every request's path, so both answer them without waiting.
 */
export interface KeyBackend {
  any(): boolean;
  verify(secret: string): ApiKey | null;
  create(
    name: string,
    scopes: Scope[],
    rateLimit?: number,
  ): { key: string; record: ApiKey } | Promise<{ key: string; record: ApiKey }>;
  revoke(idOrName: string): boolean | Promise<boolean>;
  list(): ApiKey[] | Promise<ApiKey[]>;
}

/** A key as both stores keep it (security/keys.ts in SQLite, store/shared/keys.ts in PostgreSQL). */
export type KeyRow = Omit<ApiKey, 'scopes' | 'source'> & { scopes: string; sha256: string };

/** A new key: its secret (shown once), the row both stores insert, and the record the API answers. */
export interface NewKey {
  key: string;
  record: ApiKey;
  /** The INSERT_KEY values, in order. */
  values: unknown[];
}

export const INSERT_KEY =
  'INSERT INTO api_keys (id, name, sha256, scopes, rate_limit, created_at) VALUES (?, ?, ?, ?, ?, ?)';

/** Checks a new key's name and scopes and makes its secret. */
export function mintKey(name: string, scopes: Scope[], rateLimit?: number): NewKey {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name))
    throw new Error('key names use letters, digits, ".", "_" and "-" (at most 64)');
  if (scopes.length === 0 || !scopes.every((s) => (SCOPES as readonly string[]).includes(s)))
    throw new Error(`scopes must be among ${SCOPES.join(', ')}`);
  const id = randomBytes(6).toString('hex');
  const key = `${KEY_PREFIX}${id}_${randomBytes(24).toString('base64url')}`;
  const created_at = new Date().toISOString();
  return {
    key,
    values: [id, name, digest(key), scopes.join(','), rateLimit ?? null, created_at],
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

/** The error of a create whose name is taken. */
export function keyNameTaken(name: string): Error {
  return new Error(`a key named "${name}" already exists`);
}

function configuredKey(k: ConfiguredKey): ApiKey {
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

/** A stored row as the API shows it: scopes as a list, never the digest. */
function keyOfRow(row: Omit<KeyRow, 'sha256'> & { sha256?: string }): ApiKey {
  const { sha256: _drop, ...rest } = row;
  return { ...rest, scopes: row.scopes.split(',') as Scope[], source: 'db' };
}

/** Every key: the table's rows (oldest first), then the configured ones. */
export function listKeys(rows: Omit<KeyRow, 'sha256'>[], configured: ConfiguredKey[]): ApiKey[] {
  return [...rows.map(keyOfRow), ...configured.map(configuredKey)];
}

/**
 * The active key a presented secret belongs to, or null: a configured key, else the row `find`
 * gives for its digest. `touch` records the key's last use, at most once a minute per key
 * (touchedAt): it is on every request's path.
 */
export function verifyKey(
  secret: string,
  configured: ConfiguredKey[],
  find: (sha256: string) => KeyRow | undefined,
  touchedAt: Map<string, number>,
  touch: (id: string, at: number) => void,
): ApiKey | null {
  if (!secret.startsWith(KEY_PREFIX) && configured.length === 0) return null;
  const d = digest(secret);
  for (const k of configured) if (sameDigest(d, k.sha256)) return configuredKey(k);
  const row = find(d);
  if (!row || row.revoked_at || !sameDigest(d, row.sha256)) return null;
  const now = Date.now();
  if (now - (touchedAt.get(row.id) ?? 0) >= TOUCH_EVERY_MS) {
    touchedAt.set(row.id, now);
    touch(row.id, now);
  }
  return keyOfRow(row);
}

/** admin implies predict. */
export function hasScope(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes(needed) || (needed === 'predict' && scopes.includes('admin'));
}

export class KeyStore {
  // Prepared once: these run on every request.
  private readonly anyActive: Database.Statement;
  private readonly bySha: Database.Statement;
  private readonly touch: Database.Statement;
  /** When each key's last_used_at was last written. */
  private readonly touchedAt = new Map<string, number>();

  constructor(
    private readonly store: StateStore,
    private readonly configured: ConfiguredKey[] = [],
  ) {
    store.migrateNamespace('auth', [
      `CREATE TABLE api_keys (
         id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
         rate_limit INTEGER, created_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT
       )`,
    ]);
    this.anyActive = store.db.prepare('SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1');
    this.bySha = store.db.prepare(
      'SELECT id, name, sha256, scopes, rate_limit, created_at, revoked_at, last_used_at FROM api_keys WHERE sha256 = ?',
    );
    this.touch = store.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?');
  }

  /** True when any key (database or config) could authenticate a request. */
  any(): boolean {
    if (this.configured.length > 0) return true;
    return this.anyActive.get() !== undefined;
  }

  /** Creates a key; the secret is returned once and never stored. */
  create(name: string, scopes: Scope[], rateLimit?: number): { key: string; record: ApiKey } {
    const k = mintKey(name, scopes, rateLimit);
    try {
      this.store.db.prepare(INSERT_KEY).run(...k.values);
    } catch (e) {
      if (/UNIQUE/.test((e as Error).message)) throw keyNameTaken(name);
      throw e;
    }
    return { key: k.key, record: k.record };
  }

  revoke(idOrName: string): boolean {
    const r = this.store.db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL')
      .run(new Date().toISOString(), idOrName, idOrName);
    return r.changes > 0;
  }

  list(): ApiKey[] {
    const rows = this.store.db
      .prepare(
        'SELECT id, name, scopes, rate_limit, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at',
      )
      .all() as Omit<KeyRow, 'sha256'>[];
    return listKeys(rows, this.configured);
  }

  /** The active key a presented secret belongs to, or null. */
  verify(secret: string): ApiKey | null {
    return verifyKey(
      secret,
      this.configured,
      (d) => this.bySha.get(d) as KeyRow | undefined,
      this.touchedAt,
      // Never at the cost of the request: a full disk must not turn every keyed prediction into
      // an error (storage faults are reported by the store).
      (id, now) => this.store.bestEffort(() => this.touch.run(new Date(now).toISOString(), id)),
    );
  }
}
