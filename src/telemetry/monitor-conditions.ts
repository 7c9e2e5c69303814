// The monitor's conditions and restart policy: per replica, its state transitions, restarts and
// how many samples in a row it has been over the cpu / memory thresholds; the disk of the state
// dir; a model's health. Fires and resolves alerts, and asks a deployment to replace a replica
// that stays over its memory threshold. Sampling and storage are the monitor's (monitor.ts).
import type { ModelDeployment } from '../scheduler/deployment.js';
import type { AlertKind, AlertManager, AlertSeverity } from './alerts.js';
import { MB, type ModelMetrics, type ReplicaMetrics, type SystemMetrics } from './monitor-metrics.js';
import type { MonitorEvent } from './monitor-log.js';

export interface Thresholds {
  /** Percent of the model's CPU allotment (`resources.cpus` cores); 100 = the whole allotment busy. */
  cpu_percent: number;
  /** Percent of the model's memory limit (`resources.memory_mb`). */
  memory_percent: number;
  /** Percent of the state dir's filesystem in use. */
  disk_percent: number;
}

/** What PUT /v1/monitor/thresholds may change at runtime. */
export interface MonitorSettings extends Thresholds {
  restart_unhealthy: boolean;
  alert_after_samples: number;
  restart_after_samples: number;
}

interface ReplicaTrack {
  state: string;
  restarts: number;
  memOver: number;
  cpuOver: number;
  /** Restart count when the monitor asked for a replacement; cleared once the new worker is ready. */
  replacing: number | null;
  seen: number;
}

/** A restart nobody asked for, for the model's health alert. */
export interface UnexpectedRestart {
  id: string;
  text: string;
}

function fmtMb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

export class MonitorConditions {
  private readonly replicaTrack = new Map<string, ReplicaTrack>();
  private diskOver = 0;

  constructor(
    private readonly alerts: AlertManager,
    private readonly event: (e: MonitorEvent, at: number) => void,
    private readonly settings: () => MonitorSettings,
  ) {}

  /**
   * One sample of a condition against its threshold: the alert fires once the value has been at
   * or over it for alert_after_samples samples in a row, and resolves on the first sample under
   * it. Returns the new count of samples over.
   */
  private threshold(
    over: number,
    c: {
      key: string;
      kind: AlertKind;
      value: number;
      threshold: number;
      severity: AlertSeverity;
      message: () => string;
      subject?: { model: string; version: string; replica: string };
    },
  ): number {
    const n = c.value >= c.threshold ? over + 1 : 0;
    if (n >= this.settings().alert_after_samples) {
      this.alerts.fire({
        ...c.subject,
        key: c.key,
        kind: c.kind,
        severity: c.severity,
        message: c.message(),
        value: c.value,
        threshold: c.threshold,
      });
    } else if (n === 0) {
      this.alerts.resolve(c.key, `${c.kind} back under ${c.threshold}% (${c.value.toFixed(1)}%)`, c.value);
    }
    return n;
  }

  /** State transitions, restarts, and the cpu/memory conditions of one replica. Returns unexpected restarts. */
  replica(
    name: string,
    mm: ModelMetrics,
    r: ReplicaMetrics,
    key: string,
    now: number,
    d: ModelDeployment | undefined,
  ): UnexpectedRestart[] {
    const st = this.settings();
    let t = this.replicaTrack.get(key);
    const unexpected: UnexpectedRestart[] = [];
    if (!t) {
      t = { state: r.state, restarts: r.restarts, memOver: 0, cpuOver: 0, replacing: null, seen: 0 };
      this.replicaTrack.set(key, t);
      this.event(
        {
          model: name,
          version: mm.version,
          replica: r.id,
          kind: 'replica',
          from: null,
          to: r.state,
          message: r.pid ? `pid ${r.pid}` : null,
        },
        now,
      );
    } else if (t.state !== r.state) {
      this.event(
        {
          model: name,
          version: mm.version,
          replica: r.id,
          kind: 'replica',
          from: t.state,
          to: r.state,
          message: r.state === 'restarting' || r.state === 'failed' ? (r.last_exit ?? r.last_error) : null,
        },
        now,
      );
    }
    if (r.restarts > t.restarts) {
      const requested = t.replacing !== null;
      this.event(
        {
          model: name,
          version: mm.version,
          replica: r.id,
          kind: 'restart',
          from: null,
          to: r.state,
          message: `${requested ? 'replaced by the monitor' : 'restarted'}: ${r.last_exit ?? 'unknown reason'}`,
        },
        now,
      );
      if (!requested)
        unexpected.push({ id: r.id, text: `replica ${r.id} restarted (${r.last_exit ?? 'unknown reason'})` });
    }
    if (t.replacing !== null && r.state === 'ready' && r.restarts > t.replacing) t.replacing = null;
    t.state = r.state;
    t.restarts = r.restarts;
    t.seen++;

    // Only a ready replica's numbers count: a restarting one still shows its dead worker's last sample.
    if (r.state !== 'ready') return unexpected;
    const base = { model: name, version: mm.version, replica: r.id };

    if (r.memory_percent !== null) {
      const limit = mm.limits.memory_bytes;
      const memory = r.memory_percent;
      t.memOver = this.threshold(t.memOver, {
        key: `memory:${key}`,
        kind: 'memory',
        value: memory,
        threshold: st.memory_percent,
        severity: memory >= 100 ? 'critical' : 'warning',
        message: () =>
          `${name} replica ${r.id} uses ${fmtMb(r.rss_bytes ?? 0)}, ${memory.toFixed(1)}% of its ${fmtMb(limit)} memory limit (threshold ${st.memory_percent}%)`,
        subject: base,
      });
      if (
        st.restart_unhealthy &&
        d &&
        t.replacing === null &&
        t.memOver >= st.restart_after_samples &&
        (!r.busy || t.memOver >= 2 * st.restart_after_samples)
      ) {
        const reason = `memory over monitor threshold (${r.memory_percent.toFixed(1)}% of ${fmtMb(limit)} for ${t.memOver} samples)`;
        if (d.restartReplica(r.id, reason)) {
          t.replacing = r.restarts;
          t.memOver = 0;
          this.event({ ...base, kind: 'restart_requested', from: r.state, to: 'restarting', message: reason }, now);
          this.alerts.note(`memory:${key}`, 'restart_requested', reason, r.memory_percent);
        }
      }
    }
    if (r.cpu_limit_percent !== null) {
      const cpu = r.cpu_limit_percent;
      t.cpuOver = this.threshold(t.cpuOver, {
        key: `cpu:${key}`,
        kind: 'cpu',
        value: cpu,
        threshold: st.cpu_percent,
        severity: 'warning',
        message: () =>
          `${name} replica ${r.id} uses ${cpu.toFixed(1)}% of its ${mm.limits.cpus} CPU allotment (threshold ${st.cpu_percent}%)`,
        subject: base,
      });
    }
    return unexpected;
  }

  /** Health: a failed model or replica, one restarting, or a restart nobody asked for since the last sample. */
  health(name: string, mm: ModelMetrics, d: ModelDeployment | undefined, unexpected: UnexpectedRestart[]): void {
    if (mm.status === 'loading' || mm.status === 'draining') return;
    const reasons: string[] = [];
    const named = new Set<string>();
    if (mm.status === 'failed') reasons.push(`model ${name} failed: ${mm.last_error ?? 'unknown error'}`);
    for (const r of mm.replicas) {
      const replacing = (this.replicaTrack.get(`${name}/${r.id}`)?.replacing ?? null) !== null;
      if (r.state === 'failed') reasons.push(`replica ${r.id} failed: ${r.last_error ?? r.last_exit ?? 'unknown'}`);
      else if (r.state === 'restarting' && !replacing)
        reasons.push(`replica ${r.id} restarting after: ${r.last_exit ?? 'unknown'}`);
      else continue;
      named.add(r.id);
    }
    for (const u of unexpected) if (!named.has(u.id)) reasons.push(u.text);
    const key = `health:${name}`;
    if (reasons.length > 0) {
      this.alerts.fire({
        key,
        kind: 'health',
        severity: 'critical',
        model: name,
        version: mm.version,
        message: reasons.join('; '),
        value: reasons.length,
      });
    } else if (d && d.healthy()) {
      this.alerts.resolve(key, 'healthy again');
    }
  }

  /** The state dir's filesystem against disk_percent. */
  disk(system: SystemMetrics): void {
    const st = this.settings();
    if (system.disk_percent === null) return;
    const disk = system.disk_percent;
    this.diskOver = this.threshold(this.diskOver, {
      key: 'disk:state_dir',
      kind: 'disk',
      value: disk,
      threshold: st.disk_percent,
      severity: disk >= 98 ? 'critical' : 'warning',
      message: () => `filesystem of ${system.disk_path} is ${disk.toFixed(1)}% full (threshold ${st.disk_percent}%)`,
    });
  }

  /** A model gone or unloaded: its alerts end, and its replicas are forgotten. */
  resolveModel(name: string, why: string): void {
    for (const key of this.alerts.firingKeys()) {
      const subject = key.slice(key.indexOf(':') + 1);
      if (subject === name || subject.startsWith(`${name}/`)) this.alerts.resolve(key, why);
    }
    for (const key of [...this.replicaTrack.keys()]) if (key.startsWith(`${name}/`)) this.replicaTrack.delete(key);
  }

  /** Replicas that went away (scale-down, unload, reload): their conditions end with them. */
  dropGone(seen: Set<string>, now: number): void {
    for (const [key, t] of this.replicaTrack) {
      if (seen.has(key)) continue;
      const [model, replica] = key.split('/') as [string, string];
      this.replicaTrack.delete(key);
      this.event({ model, replica, kind: 'replica', from: t.state, to: 'removed', message: null }, now);
      this.alerts.resolve(`memory:${key}`, 'replica removed');
      this.alerts.resolve(`cpu:${key}`, 'replica removed');
    }
  }
}
