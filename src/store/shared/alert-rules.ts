// The alert rules set at runtime (the monitor's settings: thresholds, sample counts, restart
// policy; PUT /v1/monitor/thresholds) in a shared state database, one set for every gateway.
// Each gateway keeps a copy in memory, reloaded when another announces a change (changes.ts),
// and hands it to the monitor, which evaluates its own workers against it. The alerts those
// rules raise stay each gateway's own (src/telemetry/alerts.ts; docs/scale-out.md says why).
import type { AlertRulesBackend, SavedRules } from '../../telemetry/alerts.js';
import type { SqlClient, SqlRunner } from '../sql.js';
import { WriteGuard } from './write-guard.js';
import { notify, openMirror, type ChangeFeed } from './changes.js';

export const ALERT_RULE_MIGRATIONS = [
  `CREATE TABLE monitor_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL)`,
];

const TOPIC = 'alert_rules';

const stampOf = (r: SavedRules | undefined): string => (r ? `${r.updated_at}:${r.value}` : '');

export class SharedAlertRules implements AlertRulesBackend {
  private saved: SavedRules | undefined;
  private listener: ((rules: SavedRules | undefined) => void) | null = null;
  /** A read begun before a write of this gateway would hand back the rules before it. */
  private readonly guard = new WriteGuard();

  private constructor(private readonly sql: SqlClient) {}

  static open(sql: SqlClient, feed?: ChangeFeed): Promise<SharedAlertRules> {
    return openMirror(
      sql,
      { namespace: 'alert_rules', migrations: ALERT_RULE_MIGRATIONS },
      feed,
      TOPIC,
      () => new SharedAlertRules(sql),
    );
  }

  /** Called with the rules whenever another gateway changed them (undefined: reset to each gateway's configuration). */
  onChange(fn: (rules: SavedRules | undefined) => void): void {
    this.listener = fn;
  }

  async reload(): Promise<void> {
    await this.guard.reload(
      () => this.sql.query<SavedRules>(`SELECT value, updated_at FROM monitor_settings WHERE key = 'settings'`),
      ([row]) => {
        const next = row ? { value: row.value, updated_at: Number(row.updated_at) } : undefined;
        if (stampOf(next) === stampOf(this.saved)) return;
        this.saved = next;
        this.listener?.(next);
      },
    );
  }

  /** The rules as last read or written. */
  load(): SavedRules | undefined {
    return this.saved;
  }

  async save(rules: SavedRules): Promise<void> {
    await this.write(rules, (q) =>
      q.run(
        `INSERT INTO monitor_settings (key, value, updated_at) VALUES ('settings', ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [rules.value, rules.updated_at],
      ),
    );
  }

  async reset(): Promise<void> {
    await this.write(undefined, (q) => q.run(`DELETE FROM monitor_settings WHERE key = 'settings'`));
  }

  /** Stores, announces, and keeps what was stored as the copy (the monitor applies it itself: no onChange). */
  private async write(next: SavedRules | undefined, fn: (q: SqlRunner) => Promise<unknown>): Promise<void> {
    await this.guard.write(async () => {
      await this.sql.tx(async (q) => {
        await fn(q);
        await notify(q, TOPIC);
      });
      this.saved = next;
    });
  }
}
