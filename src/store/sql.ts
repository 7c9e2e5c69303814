// One small async SQL surface over the two state databases: the embedded SQLite file (the
// default, better-sqlite3) and a PostgreSQL server shared by several gateways (`pg`). The
// shared-state stores (src/store/shared/*.ts) are written once against it.
//
// Statements use `?` placeholders (rewritten to `$1…` for PostgreSQL) and SQL both databases
// accept; where they differ, `dialect` tells. Migrations are versioned per namespace in one
// `schema_migrations` table (the same table StateStore.migrateNamespace keeps in SQLite) and
// applied at start; on PostgreSQL under an advisory lock, so gateways starting together apply
// each one once.
import type Database from 'better-sqlite3';
import pg from 'pg';

// BIGINT (COUNT(*), lease times in ms) as a number, not a string: every value stored here fits in 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type Dialect = 'sqlite' | 'postgres';

/** A migration: one script for both databases, or one each. */
export type Migration = string | { sqlite: string; postgres: string };

export interface SqlRunner {
  readonly dialect: Dialect;
  /** Rows of a statement that returns rows (SELECT, … RETURNING). */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** A statement that returns no rows; how many rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface SqlClient extends SqlRunner {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  tx<T>(fn: (q: SqlRunner) => Promise<T>): Promise<T>;
  /** Applies the namespace's migrations not applied yet, in order, each in its own transaction. */
  migrate(namespace: string, migrations: readonly Migration[]): Promise<void>;
  close(): Promise<void>;
}

/** `postgres://` or `postgresql://`: the URL selects PostgreSQL as the shared state store. */
export function isPostgresUrl(url: string | undefined): url is string {
  return typeof url === 'string' && /^postgres(ql)?:\/\//.test(url);
}

/** The URL with its password replaced, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}

function scriptFor(m: Migration, dialect: Dialect): string {
  return typeof m === 'string' ? m : m[dialect];
}

/** `?` → `$1`, `$2`… outside quoted strings and identifiers. */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') out += `$${++n}`;
    else out += ch;
  }
  return out;
}

/** Prepared statements kept per connection: the job store runs one UPDATE per record. */
const STATEMENT_CACHE = 64;

/**
 * One queue per database file for every SqliteClient of this process: better-sqlite3 blocks the
 * event loop while it waits for SQLite's write lock, so a second connection of this process
 * beginning a transaction while another is open would wait on a lock that cannot be released.
 */
const fileQueues = new Map<string, { tail: Promise<unknown>; users: number }>();

/**
 * SQLite: resolves at once (better-sqlite3 is synchronous). Everything goes through one queue,
 * so a transaction's statements are never interleaved with another caller's on the one connection.
 */
export class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  private readonly queue: { tail: Promise<unknown>; users: number };
  private readonly direct: SqlRunner;

  constructor(readonly db: Database.Database) {
    const key = db.memory ? `:memory:${Math.random()}` : db.name;
    let q = fileQueues.get(key);
    if (!q) fileQueues.set(key, (q = { tail: Promise.resolve(), users: 0 }));
    q.users++;
    this.queue = q;
    this.queueKey = key;
    const statements = new Map<string, Database.Statement>();
    const prepare = (sql: string): Database.Statement => {
      let stmt = statements.get(sql);
      if (stmt) {
        // Most recently used last: the first one is the one to drop.
        statements.delete(sql);
      } else {
        stmt = db.prepare(sql);
        if (statements.size >= STATEMENT_CACHE) statements.delete(statements.keys().next().value!);
      }
      statements.set(sql, stmt);
      return stmt;
    };
    const query = <T>(sql: string, params: readonly unknown[] = []): T[] => {
      const stmt = prepare(sql);
      if (stmt.reader) return stmt.all(...params) as T[];
      stmt.run(...params);
      return [];
    };
    const run = (sql: string, params: readonly unknown[] = []): number => prepare(sql).run(...params).changes;
    this.direct = {
      dialect: 'sqlite',
      query: <T>(sql: string, params?: readonly unknown[]) => Promise.resolve(query<T>(sql, params)),
      run: (sql: string, params?: readonly unknown[]) => Promise.resolve(run(sql, params)),
    };
  }

  private readonly queueKey: string;

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.tail.then(fn, fn);
    this.queue.tail = next.catch(() => undefined);
    return next;
  }

  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.serial(() => this.direct.query<T>(sql, params));
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.serial(() => this.direct.run(sql, params));
  }

  tx<T>(fn: (q: SqlRunner) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(this.direct);
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
    });
  }

  async migrate(namespace: string, migrations: readonly Migration[]): Promise<void> {
    await this.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)',
    );
    for (;;) {
      const applied = await this.tx(async (q) => {
        const [row] = await q.query<{ version: number }>('SELECT version FROM schema_migrations WHERE namespace = ?', [
          namespace,
        ]);
        const v = row?.version ?? 0;
        if (v >= migrations.length) return false;
        this.db.exec(scriptFor(migrations[v]!, 'sqlite'));
        await q.run(
          'INSERT INTO schema_migrations (namespace, version) VALUES (?, ?) ON CONFLICT(namespace) DO UPDATE SET version = excluded.version',
          [namespace, v + 1],
        );
        return true;
      });
      if (!applied) return;
    }
  }

  /** Stops using the queue; the database belongs to whoever opened it (a StateStore, openSqlClient). */
  async close(): Promise<void> {
    await this.queue.tail;
    if (--this.queue.users === 0 && fileQueues.get(this.queueKey) === this.queue) fileQueues.delete(this.queueKey);
  }
}

/** PostgreSQL errors worth a retry: the server restarting, a connection lost, a deadlock. */
export function isTransient(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string')
    return /Connection terminated|connection (is )?closed|not queryable/i.test(
      String((e as Error | null)?.message ?? ''),
    );
  // 08: connection exceptions; 57P01-03: admin shutdown, crash shutdown, cannot connect now; 40001/40P01: serialization, deadlock.
  return (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '40001' ||
    code === '40P01' ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE'
  );
}

export interface PostgresOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /** How long a statement may run, ms (default 30 s). */
  statementTimeoutMs?: number;
  /** Errors of idle pooled connections (a server restart): reported, never thrown. */
  onError?: (message: string) => void;
}

/** PostgreSQL through a `pg` pool; a connection lost to a restart is replaced on the next query. */
export class PostgresClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;

  constructor(
    readonly url: string,
    opts: PostgresOptions = {},
  ) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      statement_timeout: opts.statementTimeoutMs ?? 30_000,
      connectionTimeoutMillis: 5_000,
    });
    // An idle connection dies with the server: pg emits it here, and an unhandled 'error' would end the process.
    this.pool.on('error', (e) => opts.onError?.(`PostgreSQL connection lost (${redactUrl(url)}): ${e.message}`));
  }

  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.pool.query(numberPlaceholders(sql), params as unknown[])).rows as T[];
  }

  async run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return (await this.pool.query(numberPlaceholders(sql), params as unknown[])).rowCount ?? 0;
  }

  async tx<T>(fn: (q: SqlRunner) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // The connection may die while checked out (a server restart): the query in progress fails
    // with it, and this keeps pg's 'error' event from ending the process.
    const onError = (): void => undefined;
    client.on('error', onError);
    const q: SqlRunner = {
      dialect: 'postgres',
      query: async <R>(sql: string, params: readonly unknown[] = []) =>
        (await client.query(numberPlaceholders(sql), params as unknown[])).rows as R[],
      run: async (sql: string, params: readonly unknown[] = []) =>
        (await client.query(numberPlaceholders(sql), params as unknown[])).rowCount ?? 0,
    };
    let broken = false;
    try {
      await client.query('BEGIN');
      const r = await fn(q);
      await client.query('COMMIT');
      return r;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw e;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  async migrate(namespace: string, migrations: readonly Migration[]): Promise<void> {
    await this.tx(async (q) => {
      // One gateway at a time: the others wait here, then find the migrations applied.
      await q.query("SELECT pg_advisory_xact_lock(hashtext('isomodel.schema_migrations'))");
      await q.run(
        'CREATE TABLE IF NOT EXISTS schema_migrations (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)',
      );
      const [row] = await q.query<{ version: number }>('SELECT version FROM schema_migrations WHERE namespace = ?', [
        namespace,
      ]);
      for (let v = row?.version ?? 0; v < migrations.length; v++) {
        await q.run(scriptFor(migrations[v]!, 'postgres'));
        await q.run(
          'INSERT INTO schema_migrations (namespace, version) VALUES (?, ?) ON CONFLICT (namespace) DO UPDATE SET version = excluded.version',
          [namespace, v + 1],
        );
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
