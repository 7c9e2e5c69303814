// Deployment specs in a shared state database: what the deployment API (/api/v1/models) did
// through one gateway, so that every other gateway does the same with its own workers
// (src/scheduler/deployment-sync.ts applies them). One row per model version: its last action
// (deploy, rolling update, undeploy), where its package comes from, the overrides and replica
// count given; version '' holds a model-level removal. Each write takes a higher `seq`, so a
// gateway applies exactly the rows it has not applied yet, in the order they were made.
import type { VersionOverrides } from '../../scheduler/registry.js';
import type { SqlClient } from '../sql.js';
import { WriteGuard } from './write-guard.js';
import { notify, openMirror, type ChangeFeed } from './changes.js';

export const DEPLOYMENT_MIGRATIONS = [
  `CREATE TABLE model_deployments (
     name TEXT NOT NULL, version TEXT NOT NULL, action TEXT NOT NULL, source TEXT, overrides TEXT, replicas INTEGER,
     seq BIGINT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (name, version)
   )`,
];

const TOPIC = 'deployments';

/** deploy: load (pinned); update: rolling update to it; undeploy: unload it; remove (version ''): undeploy the whole model. */
export type DeploymentAction = 'deploy' | 'update' | 'undeploy' | 'remove';

/**
 * Where a version's package comes from, for a gateway that does not know it yet: its own models
 * dir (the same relative folder), a folder every gateway can read (an absolute path), or an
 * image deploy's manifest, written as a package into the gateway's own state dir.
 */
export type DeploymentSource =
  { kind: 'models_dir'; dir: string } | { kind: 'path'; dir: string } | { kind: 'image'; manifest: unknown };

export interface DeploymentSpec {
  name: string;
  /** '' for a model-level action (remove). */
  version: string;
  action: DeploymentAction;
  source: DeploymentSource | null;
  overrides: VersionOverrides | null;
  /** The replica count last set through the scale route; null: as the manifest and overrides say. */
  replicas: number | null;
  seq: number;
  updated_at: string;
}

export type DeploymentWrite = Omit<DeploymentSpec, 'seq' | 'updated_at'>;

interface Row {
  name: string;
  version: string;
  action: DeploymentAction;
  source: string | null;
  overrides: string | null;
  replicas: number | null;
  seq: number;
  updated_at: string;
}

export const specKey = (name: string, version: string): string => `${name}@${version}`;

export class SharedDeploymentStore {
  private rows = new Map<string, DeploymentSpec>();
  private stamp = '';
  private listener: (() => void) | null = null;
  /** A read begun before a write of this gateway would hand back the rows before it. */
  private readonly guard = new WriteGuard();

  private constructor(private readonly sql: SqlClient) {}

  static open(sql: SqlClient, feed?: ChangeFeed): Promise<SharedDeploymentStore> {
    return openMirror(
      sql,
      { namespace: 'deployments', migrations: DEPLOYMENT_MIGRATIONS },
      feed,
      TOPIC,
      () => new SharedDeploymentStore(sql),
    );
  }

  /** Called whenever the rows changed (through any gateway); read them with all(). */
  onChange(fn: () => void): void {
    this.listener = fn;
  }

  async reload(): Promise<void> {
    await this.guard.reload(
      () =>
        this.sql.query<Row>(
          'SELECT name, version, action, source, overrides, replicas, seq, updated_at FROM model_deployments ORDER BY seq, name, version',
        ),
      (rows) => {
        const stamp = rows.map((r) => `${r.name}@${r.version}#${r.seq}`).join(',');
        if (stamp === this.stamp) return;
        this.stamp = stamp;
        this.rows = new Map(rows.map((r) => [specKey(r.name, r.version), fromRow(r)]));
        this.listener?.();
      },
    );
  }

  /** Every spec as last read, oldest change first. */
  all(): DeploymentSpec[] {
    return [...this.rows.values()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * Stores one version's spec (or a model's removal: version '') and announces it. `build` gets
   * the row stored now, if any (read under the lock, so two gateways' writes never cross).
   * `onStored` gets the row as stored before any reload can see it, so the writer marks it
   * applied and never applies its own change a second time. A rolling update or a removal drops
   * the model's other version rows: it undoes what they described, and a gateway starting later
   * must not redo it.
   */
  async put(
    name: string,
    version: string,
    build: (existing: DeploymentSpec | undefined) => Omit<DeploymentWrite, 'name' | 'version'>,
    onStored: (spec: DeploymentSpec) => void,
  ): Promise<DeploymentSpec> {
    return this.guard.write(async () => {
      const spec = await this.sql.tx(async (q) => {
        // One writer at a time: each write's seq is above every earlier one's.
        if (q.dialect === 'postgres')
          await q.query("SELECT pg_advisory_xact_lock(hashtext('isomodel.model_deployments'))");
        const [row] = await q.query<{ seq: number | null }>('SELECT MAX(seq) AS seq FROM model_deployments');
        const seq = Number(row?.seq ?? 0) + 1;
        const [old] = await q.query<Row>(
          'SELECT name, version, action, source, overrides, replicas, seq, updated_at FROM model_deployments WHERE name = ? AND version = ?',
          [name, version],
        );
        const s: DeploymentSpec = {
          ...build(old ? fromRow(old) : undefined),
          name,
          version,
          seq,
          updated_at: new Date().toISOString(),
        };
        if (s.action === 'update' || s.action === 'remove')
          await q.run(`DELETE FROM model_deployments WHERE name = ? AND version <> ? AND version <> ''`, [
            name,
            version,
          ]);
        await q.run(
          `INSERT INTO model_deployments (name, version, action, source, overrides, replicas, seq, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (name, version) DO UPDATE SET action = excluded.action, source = excluded.source, overrides = excluded.overrides,
             replicas = excluded.replicas, seq = excluded.seq, updated_at = excluded.updated_at`,
          [
            s.name,
            s.version,
            s.action,
            s.source ? JSON.stringify(s.source) : null,
            s.overrides ? JSON.stringify(s.overrides) : null,
            s.replicas,
            s.seq,
            s.updated_at,
          ],
        );
        await notify(q, TOPIC);
        return s;
      });
      onStored(spec);
      return spec;
    });
  }
}

function fromRow(r: Row): DeploymentSpec {
  return {
    name: r.name,
    version: r.version,
    action: r.action,
    source: r.source ? (JSON.parse(r.source) as DeploymentSource) : null,
    overrides: r.overrides ? (JSON.parse(r.overrides) as VersionOverrides) : null,
    replicas: r.replicas === null ? null : Number(r.replicas),
    seq: Number(r.seq),
    updated_at: r.updated_at,
  };
}
