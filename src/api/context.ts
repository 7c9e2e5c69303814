// What the HTTP surfaces (api/routes, console, mcp/http) see of the gateway: the inference
// context and the jobs' stores (jobs/context.ts), plus probes, keys, audit and the operators'
// views. The Gateway class implements it; routes import this type, never src/gateway.ts, so that
// the composition root stays on top.
import type { CgroupManager } from '../drivers/cgroups.js';
import type { JobsContext } from '../jobs/context.js';
import type { ContainerManager } from '../scheduler/containers.js';
import type { DeploymentSync } from '../scheduler/deployment-sync.js';
import type { AuditSink } from '../security/audit.js';
import type { KeyBackend } from '../security/keys.js';
import type { Monitor } from '../telemetry/monitor.js';
import type { ReplicaLogs } from '../telemetry/replica-logs.js';

export interface GatewayContext extends JobsContext {
  readonly cgroups: CgroupManager;
  /** Seed 001's named replica sets (api/routes/seed-001.ts). */
  readonly containers: ContainerManager;
  readonly replicaLogs: ReplicaLogs | null;
  readonly monitor: Monitor;
  /** Where API keys are checked (shared store with database_url, else SQLite). */
  readonly keyring: KeyBackend;
  /** Where admin actions are recorded. */
  readonly auditTrail: AuditSink;
  /** Records deployment changes for the other gateways (database_url), else null. */
  readonly deploymentSync: DeploymentSync | null;
  readonly startedAt: number;
  /** The initial model loads have been attempted. */
  readonly started: boolean;
  /** The model the root routes answer for. */
  defaultModel(): string | undefined;
  /** The configured default_model when no package has that name. */
  missingDefaultModel(): string | undefined;
  requiredModels(): string[];
}
