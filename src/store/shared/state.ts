// Everything gateways share when `database_url` names a PostgreSQL server: API keys, the audit
// log, traffic splits, deployment specs, alert rules and jobs, over one pool, and the change
// feed that carries a change made through one gateway to the others (changes.ts). What stays
// in each gateway's own SQLite file (its state dir): the request log, the monitor's samples and
// the alerts it raised, perf reports, the model registry's rows and seed containers;
// docs/scale-out.md says why.
import type { ConfiguredKey } from '../../security/keys.js';
import { PostgresClient, redactUrl } from '../sql.js';
import { ChangeFeed } from './changes.js';
import { SharedAlertRules } from './alert-rules.js';
import { SharedAuditLog } from './audit.js';
import { SharedDeploymentStore } from './deployments.js';
import { JobStore } from '../../jobs/store.js';
import { SharedKeyStore } from './keys.js';
import { SharedTrafficStore } from './traffic.js';

/** How often shared keys, splits, deployments and alert rules are re-read when no notification came (the bound while LISTEN is down). */
export const SHARED_POLL_MS = 500;

export class SharedState {
  private constructor(
    readonly url: string,
    readonly sql: PostgresClient,
    readonly feed: ChangeFeed,
    readonly keys: SharedKeyStore,
    readonly audit: SharedAuditLog,
    readonly traffic: SharedTrafficStore,
    readonly jobs: JobStore,
    readonly deployments: SharedDeploymentStore,
    readonly alertRules: SharedAlertRules,
  ) {}

  /** Connects, applies the migrations not applied yet and loads keys and splits; throws a clear error when the server cannot be used. */
  static async open(
    url: string,
    configured: ConfiguredKey[],
    onError: (message: string) => void,
  ): Promise<SharedState> {
    const sql = new PostgresClient(url, { onError });
    try {
      await sql.query('SELECT 1');
    } catch (e) {
      await sql.close().catch(() => undefined);
      throw new Error(
        `cannot reach the shared state database ${redactUrl(url)}: ${(e as Error).message}. Check database_url (ISOMODEL_DATABASE_URL) and that the server accepts this gateway.`,
      );
    }
    const feed = new ChangeFeed({ url, pollMs: SHARED_POLL_MS, onError });
    try {
      const keys = await SharedKeyStore.open(sql, configured, feed, onError);
      const audit = await SharedAuditLog.open(sql, onError);
      const traffic = await SharedTrafficStore.open(sql, feed);
      const jobs = await JobStore.open(sql);
      const deployments = await SharedDeploymentStore.open(sql, feed);
      const alertRules = await SharedAlertRules.open(sql, feed);
      await feed.start();
      return new SharedState(url, sql, feed, keys, audit, traffic, jobs, deployments, alertRules);
    } catch (e) {
      await feed.close();
      await sql.close().catch(() => undefined);
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.feed.close();
    await this.audit.flush();
    await this.sql.close();
  }
}
