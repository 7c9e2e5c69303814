// `isomodel keys create|revoke|ls`: API keys in the state dir's SQLite (a running gateway
// sees changes at once: keys are checked against the database on every request), or, with
// database_url, in the PostgreSQL database gateways share (each reloads its keys when told of the
// change: src/store/shared/keys.ts). Creating and revoking a key are admin actions: they go into
// the audit log like the API's.
import { userInfo } from 'node:os';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import { AuditLog, type AuditSink } from '../security/audit.js';
import { KeyStore, SCOPES, type KeyBackend, type Scope } from '../security/keys.js';
import { StateStore } from '../store/db.js';
import { SharedState } from '../store/shared/state.js';
import { table } from './table.js';

async function withKeys<T>(config: Config, fn: (keys: KeyBackend, audit: AuditSink) => T | Promise<T>): Promise<T> {
  if (config.database_url) {
    const shared = await SharedState.open(config.database_url, config.auth.keys, (m) => process.stderr.write(`${m}\n`));
    try {
      return await fn(shared.keys, shared.audit);
    } finally {
      await shared.close();
    }
  }
  const store = new StateStore(config.state_dir);
  try {
    return await fn(new KeyStore(store, config.auth.keys), new AuditLog(store));
  } finally {
    store.close();
  }
}

/** Who ran the command, as the audit log's actor. */
function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:uid ${process.getuid?.() ?? '?'}`;
  }
}

export function keysCommand(config: () => Config): Command {
  const keys = new Command('keys').description('manage API keys (stored hashed in the state dir)');
  keys
    .command('create')
    .argument('<name>', 'a name for the key (who or what uses it)')
    .option('-s, --scopes <scopes>', `comma-separated: ${SCOPES.join(', ')}`, 'predict')
    .option('--rate-limit <n>', 'requests per rate-limit window for this key')
    .description('create a key; the secret is printed once')
    .action(async (name: string, opts: { scopes: string; rateLimit?: string }) => {
      const scopes = opts.scopes
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean) as Scope[];
      const { key, record } = await withKeys(config(), async (k, audit) => {
        try {
          const made = await k.create(name, scopes, opts.rateLimit ? Number(opts.rateLimit) : undefined);
          audit.record({
            actor: cliActor(),
            action: 'keys.create',
            target: name,
            params: { name, scopes: scopes.join(',') },
            outcome: 'allowed',
            status: 0,
            details: `key ${made.record.id}`,
          });
          return made;
        } catch (e) {
          audit.record({
            actor: cliActor(),
            action: 'keys.create',
            target: name,
            outcome: 'failed',
            status: 1,
            details: (e as Error).message,
          });
          throw e;
        }
      });
      process.stdout.write(`${key}\n`);
      process.stderr.write(
        `created key ${record.id} "${record.name}" with scopes ${record.scopes.join(',')}; store it now: it is not shown again\n`,
      );
    });
  keys
    .command('revoke')
    .argument('<id-or-name>')
    .description('revoke a key at once')
    .action(async (idOrName: string) => {
      const revoked = await withKeys(config(), async (k, audit) => {
        const done = await k.revoke(idOrName);
        audit.record({
          actor: cliActor(),
          action: 'keys.revoke',
          target: idOrName,
          outcome: done ? 'allowed' : 'failed',
          status: done ? 0 : 1,
          details: done ? undefined : 'no active key',
        });
        return done;
      });
      if (!revoked) throw new Error(`no active key "${idOrName}"`);
      process.stdout.write(`revoked ${idOrName}\n`);
    });
  keys
    .command('ls')
    .option('--json', 'print JSON')
    .description('list keys (never their secrets)')
    .action(async (opts: { json?: boolean }) => {
      const rows = (await withKeys(config(), (k) => k.list())).map((r) => ({
        ...r,
        scopes: r.scopes.join(','),
        status: r.revoked_at ? 'revoked' : 'active',
      }));
      process.stdout.write(
        (opts.json
          ? JSON.stringify(rows, null, 2)
          : table(rows, ['id', 'name', 'scopes', 'status', 'source', 'last_used_at'])) + '\n',
      );
    });
  return keys;
}
