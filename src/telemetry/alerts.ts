// Alerts of the monitor: one row per alert (firing → resolved) plus its state history, in
// SQLite; optional webhook delivery with retries and exponential backoff; and where the alert
// rules set at runtime are kept (the state dir's SQLite, or the store gateways share).
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { StateStore } from '../store/db.js';
import { iso } from './series.js';

export type AlertKind = 'cpu' | 'memory' | 'disk' | 'health';
export type AlertSeverity = 'warning' | 'critical';
export type AlertState = 'firing' | 'resolved';

export interface AlertInput {
  /** Identifies the condition: one firing alert per key at a time (e.g. "memory:chaos-py/r3"). */
  key: string;
  kind: AlertKind;
  severity: AlertSeverity;
  message: string;
  model?: string;
  version?: string;
  replica?: string;
  value?: number | null;
  threshold?: number | null;
}

export interface AlertEvent {
  at: string;
  state: string;
  value: number | null;
  message: string | null;
}

export interface Alert {
  id: number;
  key: string;
  kind: AlertKind;
  severity: AlertSeverity;
  state: AlertState;
  model: string | null;
  version: string | null;
  replica: string | null;
  message: string;
  threshold: number | null;
  value: number | null;
  last_value: number | null;
  peak_value: number | null;
  fired_at: string;
  resolved_at: string | null;
  updated_at: string;
  resolution: string | null;
  duration_s: number;
  history?: AlertEvent[];
}

/** The stored form of an Alert: times as epoch milliseconds, no derived fields. */
type AlertRow = Omit<Alert, 'fired_at' | 'resolved_at' | 'updated_at' | 'duration_s' | 'history'> & {
  fired_at: number;
  resolved_at: number | null;
  updated_at: number;
};

function toAlert(r: AlertRow): Alert {
  return {
    ...r,
    fired_at: iso(r.fired_at)!,
    resolved_at: iso(r.resolved_at),
    updated_at: iso(r.updated_at)!,
    duration_s: Math.round(((r.resolved_at ?? Date.now()) - r.fired_at) / 100) / 10,
  };
}

export interface AlertQuery {
  state?: AlertState | 'all';
  model?: string;
  kind?: AlertKind;
  sinceMs?: number;
  limit?: number;
  history?: boolean;
}

/** What a webhook receives: one POST per alert transition. */
export interface WebhookPayload {
  event: 'alert.firing' | 'alert.resolved';
  alert: Alert;
  gateway: { host: string; pid: number };
  sent_at: string;
}

export interface WebhookOptions {
  url: () => string | undefined;
  retries: number;
  backoffMs: number;
  timeoutMs?: number;
}

export interface WebhookDelivery {
  id: number;
  alert_id: number | null;
  event: string;
  url: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/**
 * Delivers webhook payloads one at a time, in order (a "resolved" never overtakes its
 * "firing"). A failed attempt (network error, timeout, 408/429/5xx) is retried after
 * backoffMs·2^(attempt-1), up to `retries` more times; other 4xx answers are final. Every
 * delivery is recorded with its attempts in monitor_webhook_deliveries.
 */
export class WebhookSender {
  private chain: Promise<void> = Promise.resolve();
  private readonly ac = new AbortController();
  private pending = 0;

  constructor(
    private readonly store: StateStore,
    private readonly logger: Logger,
    private readonly opts: WebhookOptions,
  ) {}

  enabled(): boolean {
    return Boolean(this.opts.url());
  }

  queued(): number {
    return this.pending;
  }

  send(payload: WebhookPayload): void {
    const url = this.opts.url();
    if (!url || this.ac.signal.aborted) return;
    const now = Date.now();
    const id = Number(
      this.store.db
        .prepare(
          `INSERT INTO monitor_webhook_deliveries (alert_id, event, url, status, attempts, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)`,
        )
        .run(payload.alert.id, payload.event, url, now, now).lastInsertRowid,
    );
    this.pending++;
    this.chain = this.chain
      .then(() => this.deliver(id, url, payload))
      .catch((e: Error) => this.logger.error({ err: e.message }, 'webhook delivery crashed'))
      .finally(() => this.pending--);
  }

  private async deliver(id: number, url: string, payload: WebhookPayload): Promise<void> {
    const body = JSON.stringify(payload);
    const attempts = this.opts.retries + 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.ac.signal.aborted) return this.record(id, 'failed', attempt - 1, null, 'gateway shutting down');
      let status: number | null = null;
      let error: string | null = null;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'isomodel-monitor',
            'x-isomodel-event': payload.event,
            'x-isomodel-delivery': String(id),
            'x-isomodel-attempt': String(attempt),
          },
          body,
          signal: AbortSignal.any([this.ac.signal, AbortSignal.timeout(this.opts.timeoutMs ?? 5000)]),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return this.record(id, 'delivered', attempt, status, null);
        error = `HTTP ${res.status}`;
      } catch (e) {
        error = (e as Error).message;
      }
      const retryable = status === null || status === 408 || status === 429 || status >= 500;
      if (!retryable || attempt === attempts) {
        this.logger.warn({ url, event: payload.event, attempts: attempt, error }, 'webhook delivery failed');
        return this.record(id, 'failed', attempt, status, error);
      }
      this.record(id, 'pending', attempt, status, error);
      await this.sleep(this.opts.backoffMs * 2 ** (attempt - 1));
    }
  }

  private record(
    id: number,
    status: WebhookDelivery['status'],
    attempts: number,
    lastStatus: number | null,
    error: string | null,
  ): void {
    try {
      this.store.db
        .prepare(
          'UPDATE monitor_webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ?',
        )
        .run(status, attempts, lastStatus, error, Date.now(), id);
    } catch {
      // the store closed under a delivery that outlived shutdown: nothing left to record into
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.ac.signal;
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      t.unref();
      signal.addEventListener('abort', done, { once: true });
    });
  }

  deliveries(limit = 50): WebhookDelivery[] {
    const rows = this.store.db
      .prepare('SELECT * FROM monitor_webhook_deliveries ORDER BY id DESC LIMIT ?')
      .all(limit) as (Omit<WebhookDelivery, 'created_at' | 'updated_at'> & {
      created_at: number;
      updated_at: number;
    })[];
    return rows.map((r) => ({ ...r, created_at: iso(r.created_at)!, updated_at: iso(r.updated_at)! }));
  }

  /** Waits up to graceMs for queued deliveries, then abandons the rest. */
  async close(graceMs = 2000): Promise<void> {
    if (this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.chain, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.ac.abort();
    await this.chain;
  }
}

/** The alert rules set at runtime (the monitor's settings: thresholds, sample counts, restart policy) as stored. */
export interface SavedRules {
  /** JSON of the settings. */
  value: string;
  /** Epoch ms of the change. */
  updated_at: number;
}

/**
 * Where the alert rules set at runtime are kept: the state dir's SQLite (AlertRulesStore), or
 * with database_url the store every gateway shares (src/store/shared/alert-rules.ts), which
 * reports a change made through another gateway to `onChange`.
 */
export interface AlertRulesBackend {
  load(): SavedRules | undefined;
  save(rules: SavedRules): void | Promise<void>;
  reset(): void | Promise<void>;
  onChange?(fn: (rules: SavedRules | undefined) => void): void;
}

export class AlertRulesStore implements AlertRulesBackend {
  constructor(private readonly store: StateStore) {}

  load(): SavedRules | undefined {
    return this.store.db.prepare(`SELECT value, updated_at FROM monitor_settings WHERE key = 'settings'`).get() as
      SavedRules | undefined;
  }

  save(rules: SavedRules): void {
    this.store.db
      .prepare(
        `INSERT INTO monitor_settings (key, value, updated_at) VALUES ('settings', ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      )
      .run(rules.value, rules.updated_at);
  }

  reset(): void {
    this.store.db.prepare(`DELETE FROM monitor_settings WHERE key = 'settings'`).run();
  }
}

/** Runs `then` once `write` is done: at once (still synchronously) when the write was synchronous (SQLite). */
export function afterWrite<T>(write: void | Promise<void>, then: () => T): Promise<T> {
  if (write instanceof Promise) return write.then(then);
  try {
    return Promise.resolve(then());
  } catch (e) {
    return Promise.reject(e as Error);
  }
}

/** Alerts with their state history. Firing alerts are read back at start, so they survive a restart. */
export class AlertManager {
  private readonly firing = new Map<string, AlertRow>();

  constructor(
    private readonly store: StateStore,
    private readonly logger: Logger,
    readonly webhook: WebhookSender,
  ) {
    for (const r of store.db.prepare(`SELECT * FROM monitor_alerts WHERE state = 'firing'`).all() as AlertRow[])
      this.firing.set(r.key, r);
  }

  isFiring(key: string): boolean {
    return this.firing.has(key);
  }

  firingKeys(): string[] {
    return [...this.firing.keys()];
  }

  /** Opens an alert for the key, or updates the open one's last/peak value. Returns the alert when it is new. */
  fire(input: AlertInput): Alert | null {
    const now = Date.now();
    const value = input.value ?? null;
    const open = this.firing.get(input.key);
    if (open) {
      const peak = value === null ? open.peak_value : Math.max(open.peak_value ?? value, value);
      if (value !== open.last_value || peak !== open.peak_value) {
        open.last_value = value;
        open.peak_value = peak;
        open.updated_at = now;
        this.store.db
          .prepare('UPDATE monitor_alerts SET last_value = ?, peak_value = ?, updated_at = ? WHERE id = ?')
          .run(value, peak, now, open.id);
      }
      return null;
    }
    const row: Omit<AlertRow, 'id'> = {
      key: input.key,
      kind: input.kind,
      severity: input.severity,
      state: 'firing',
      model: input.model ?? null,
      version: input.version ?? null,
      replica: input.replica ?? null,
      message: input.message,
      threshold: input.threshold ?? null,
      value,
      last_value: value,
      peak_value: value,
      fired_at: now,
      resolved_at: null,
      updated_at: now,
      resolution: null,
    };
    const id = this.store.db.transaction(() => {
      const r = this.store.db
        .prepare(
          `INSERT INTO monitor_alerts (key, kind, severity, state, model, version, replica, message, threshold, value, last_value, peak_value, fired_at, resolved_at, updated_at, resolution)
           VALUES (@key, @kind, @severity, @state, @model, @version, @replica, @message, @threshold, @value, @last_value, @peak_value, @fired_at, @resolved_at, @updated_at, @resolution)`,
        )
        .run(row);
      const alertId = Number(r.lastInsertRowid);
      this.event(alertId, now, 'firing', value, input.message);
      return alertId;
    })();
    const full: AlertRow = { id, ...row };
    this.firing.set(input.key, full);
    this.logger.warn(
      { alert: input.key, kind: input.kind, value, threshold: input.threshold },
      `alert firing: ${input.message}`,
    );
    const alert = this.get(id)!;
    this.notify('alert.firing', alert);
    return alert;
  }

  /** Closes the key's open alert, if any. Returns the resolved alert. */
  resolve(key: string, resolution: string, value?: number | null): Alert | null {
    const open = this.firing.get(key);
    if (!open) return null;
    const now = Date.now();
    this.firing.delete(key);
    this.store.db.transaction(() => {
      this.store.db
        .prepare(
          `UPDATE monitor_alerts SET state = 'resolved', resolved_at = ?, updated_at = ?, resolution = ?, last_value = COALESCE(?, last_value) WHERE id = ?`,
        )
        .run(now, now, resolution, value ?? null, open.id);
      this.event(open.id, now, 'resolved', value ?? null, resolution);
    })();
    this.logger.info({ alert: key, resolution }, `alert resolved: ${open.message}`);
    const alert = this.get(open.id)!;
    this.notify('alert.resolved', alert);
    return alert;
  }

  /** Adds a line to an alert's history without changing its state (e.g. "restart requested"). */
  note(key: string, state: string, message: string, value?: number | null): void {
    const open = this.firing.get(key);
    if (open) this.event(open.id, Date.now(), state, value ?? null, message);
  }

  private event(alertId: number, at: number, state: string, value: number | null, message: string | null): void {
    this.store.db
      .prepare('INSERT INTO monitor_alert_events (alert_id, at, state, value, message) VALUES (?, ?, ?, ?, ?)')
      .run(alertId, at, state, value, message);
  }

  private notify(event: WebhookPayload['event'], alert: Alert): void {
    if (!this.webhook.enabled()) return;
    this.webhook.send({
      event,
      alert: { ...alert, history: this.history(alert.id) },
      gateway: { host: hostname(), pid: process.pid },
      sent_at: new Date().toISOString(),
    });
  }

  history(alertId: number): AlertEvent[] {
    const rows = this.store.db
      .prepare('SELECT at, state, value, message FROM monitor_alert_events WHERE alert_id = ? ORDER BY id')
      .all(alertId) as { at: number; state: string; value: number | null; message: string | null }[];
    return rows.map((r) => ({ ...r, at: iso(r.at)! }));
  }

  get(id: number): Alert | null {
    const r = this.store.db.prepare('SELECT * FROM monitor_alerts WHERE id = ?').get(id) as AlertRow | undefined;
    return r ? toAlert(r) : null;
  }

  active(model?: string): Alert[] {
    return [...this.firing.values()].filter((r) => !model || r.model === model).map(toAlert);
  }

  list(q: AlertQuery = {}): Alert[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.state && q.state !== 'all') {
      where.push('state = ?');
      args.push(q.state);
    }
    if (q.model) {
      where.push('model = ?');
      args.push(q.model);
    }
    if (q.kind) {
      where.push('kind = ?');
      args.push(q.kind);
    }
    if (q.sinceMs !== undefined) {
      // Everything that overlapped the window: fired in it, or still open / resolved in it.
      where.push('(fired_at >= ? OR resolved_at IS NULL OR resolved_at >= ?)');
      args.push(q.sinceMs, q.sinceMs);
    }
    const sql = `SELECT * FROM monitor_alerts ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.store.db.prepare(sql).all(...args, Math.min(1000, Math.max(1, q.limit ?? 100))) as AlertRow[];
    return rows.map((r) => (q.history === false ? toAlert(r) : { ...toAlert(r), history: this.history(r.id) }));
  }

  counts(): { firing: number; total: number; by_kind: Record<string, number> } {
    const total = (this.store.db.prepare('SELECT COUNT(*) AS n FROM monitor_alerts').get() as { n: number }).n;
    const byKind: Record<string, number> = {};
    for (const r of this.firing.values()) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
    return { firing: this.firing.size, total, by_kind: byKind };
  }

  prune(beforeMs: number): void {
    this.store.db.transaction(() => {
      this.store.db
        .prepare(
          `DELETE FROM monitor_alert_events WHERE alert_id IN (SELECT id FROM monitor_alerts WHERE state = 'resolved' AND resolved_at < ?)`,
        )
        .run(beforeMs);
      this.store.db.prepare(`DELETE FROM monitor_alerts WHERE state = 'resolved' AND resolved_at < ?`).run(beforeMs);
      this.store.db.prepare('DELETE FROM monitor_webhook_deliveries WHERE updated_at < ?').run(beforeMs);
    })();
  }
}
