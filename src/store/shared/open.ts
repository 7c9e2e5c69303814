// Opens the SQL client of the shared state: PostgreSQL when a `postgres://` URL is configured
// (`database_url`, ISOMODEL_DATABASE_URL), else the embedded SQLite state database.
import Database from 'better-sqlite3';
import { isPostgresUrl, PostgresClient, SqliteClient, type PostgresOptions, type SqlClient } from '../sql.js';

/** `postgres://…` → PostgreSQL; a file path → SQLite (opened here, WAL, waits on other writers). */
export function openSqlClient(target: string, opts: PostgresOptions = {}): SqlClient {
  if (isPostgresUrl(target)) return new PostgresClient(target, opts);
  const db = new Database(target);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  const client = new SqliteClient(db);
  return Object.assign(client, {
    close: async () => {
      await SqliteClient.prototype.close.call(client);
      db.close();
    },
  });
}
