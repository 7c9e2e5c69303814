// A throwaway PostgreSQL cluster for tests: initdb in a temp dir, pg_ctl on a loopback port,
// stopped and deleted at the end. PostgreSQL refuses to run as root, so as root the cluster
// belongs to the `postgres` user (the Debian package creates it) and its tools run through
// runuser. Tests skip, with `pgUnavailable()` as the reason, where the binaries are absent.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../src/util/net.js';

const run = promisify(execFile);

/** The folder holding initdb and pg_ctl (newest major version), or null. */
export function pgBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/** Why the PostgreSQL tests cannot run here, or false when they can. */
export function pgUnavailable(): string | false {
  if (!pgBinDir())
    return 'PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin): apt-get install -y postgresql';
  if (process.getuid?.() === 0) {
    try {
      userInfo();
    } catch {
      return 'running as root without a user to own the cluster';
    }
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser'))
      return 'running as root and runuser is missing (PostgreSQL refuses to run as root)';
  }
  return false;
}

export interface PgCluster {
  /** postgres://…@127.0.0.1:port/db of a fresh database. */
  url: string;
  port: number;
  /** Creates another empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes the cluster. */
  destroy(): Promise<void>;
}

const PG_UID_USER = 'postgres';

export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-pg-'));
  const data = join(dir, 'data');
  const pg = async (tool: string, args: string[]): Promise<string> => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', PG_UID_USER, '--', join(bin, tool), ...args]]
      : [join(bin, tool), args];
    const r = await run(cmd, argv, { env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, timeout: 60_000 });
    return r.stdout;
  };
  if (asRoot) {
    const id = await run('id', ['-u', PG_UID_USER]);
    const gid = await run('id', ['-g', PG_UID_USER]);
    chownSync(dir, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }
  chmodSync(dir, 0o700);
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, 'isotest\n');
  if (asRoot) chownSync(pwfile, Number((await run('id', ['-u', PG_UID_USER])).stdout.trim()), 0);
  await pg('initdb', ['-D', data, '-U', 'iso', '--pwfile', pwfile, '-A', 'scram-sha-256', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const opts = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=100`;
  const start = async (): Promise<void> => {
    await pg('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await pg('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  await start();
  const base = `postgres://iso:isotest@127.0.0.1:${port}`;
  return {
    url: `${base}/postgres`,
    port,
    createDatabase: async (name) => {
      const { default: pgmod } = await import('pg');
      const c = new pgmod.Client({ connectionString: `${base}/postgres` });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } finally {
        await c.end();
      }
      return `${base}/${name}`;
    },
    stop,
    start,
    destroy: async () => {
      await stop('immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
