// How a change made through one gateway reaches the others: PostgreSQL LISTEN/NOTIFY on one
// channel (the payload names the topic: `keys`, `traffic`…), and polling as the fallback while
// the listening connection is down or a notification is lost. A writer calls `notify(q, topic)`
// inside its transaction, so the others hear of it only once it is committed.
import pg from 'pg';
import type { Migration, SqlClient, SqlRunner } from '../sql.js';

export const CHANGES_CHANNEL = 'isomodel_changes';

export type Refresh = () => Promise<void>;

/**
 * Opens a store that keeps a copy of its shared tables in memory: sets up its tables, reads
 * them, and reads them again whenever another gateway announces `topic`.
 */
export async function openMirror<S extends { reload(): Promise<void> }>(
  sql: SqlClient,
  tables: { namespace: string; migrations: readonly Migration[] },
  feed: ChangeFeed | undefined,
  topic: string,
  make: () => S,
): Promise<S> {
  await sql.migrate(tables.namespace, tables.migrations);
  const s = make();
  await s.reload();
  feed?.on(topic, () => s.reload());
  return s;
}

/** Tells the other gateways that `topic` changed (PostgreSQL; a no-op on SQLite, where there are no others). */
export async function notify(q: SqlRunner, topic: string): Promise<void> {
  if (q.dialect === 'postgres') await q.query('SELECT pg_notify(?, ?)', [CHANGES_CHANNEL, topic]);
}

export interface ChangeFeedOptions {
  /** The PostgreSQL URL to LISTEN on; absent: polling only. */
  url?: string;
  /** How often every topic is refreshed regardless (ms): the bound on staleness when LISTEN is down. */
  pollMs?: number;
  onError?: (message: string) => void;
}

export class ChangeFeed {
  private readonly topics = new Map<string, Refresh>();
  private client: pg.Client | null = null;
  private poll: NodeJS.Timeout | null = null;
  private reconnect: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly pollMs: number;
  /** Refreshes running or asked for, per topic: never two of one topic at once. */
  private readonly busy = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(private readonly opts: ChangeFeedOptions = {}) {
    this.pollMs = Math.max(50, opts.pollMs ?? 500);
  }

  /** Calls `refresh` whenever `topic` changes elsewhere (and every pollMs). */
  on(topic: string, refresh: Refresh): void {
    this.topics.set(topic, refresh);
  }

  async start(): Promise<void> {
    this.poll = setInterval(() => {
      for (const t of this.topics.keys()) this.refresh(t);
    }, this.pollMs);
    this.poll.unref();
    if (this.opts.url) await this.listen().catch((e: Error) => this.lost(e));
  }

  /** Whether notifications are being received now (else polling alone keeps the topics fresh). */
  get listening(): boolean {
    return this.client !== null;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.url, connectionTimeoutMillis: 5000 });
    client.on('error', (e) => this.lost(e, client));
    client.on('end', () => this.lost(new Error('connection ended'), client));
    client.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL && n.payload) this.refresh(n.payload);
    });
    await client.connect();
    await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
    // Whatever changed while we were not listening.
    for (const t of this.topics.keys()) this.refresh(t);
  }

  private lost(e: Error, client?: pg.Client): void {
    if (client && this.client !== client && this.client !== null) return;
    this.client = null;
    client?.removeAllListeners('notification');
    void client?.end().catch(() => undefined);
    if (this.closed || this.reconnect) return;
    this.opts.onError?.(
      `not listening for shared-state changes (polling every ${this.pollMs} ms meanwhile): ${e.message}`,
    );
    this.reconnect = setTimeout(() => {
      this.reconnect = null;
      if (!this.closed) this.listen().catch((err: Error) => this.lost(err));
    }, 1000);
    this.reconnect.unref();
  }

  /** Refreshes a topic now (coalesced with one already running). */
  refresh(topic: string): void {
    const fn = this.topics.get(topic);
    if (!fn) return;
    if (this.busy.has(topic)) {
      this.again.add(topic);
      return;
    }
    const p = fn()
      .catch((e: Error) => this.opts.onError?.(`cannot refresh shared ${topic}: ${e.message}`))
      .finally(() => {
        this.busy.delete(topic);
        if (this.again.delete(topic)) this.refresh(topic);
      });
    this.busy.set(topic, p);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poll) clearInterval(this.poll);
    if (this.reconnect) clearTimeout(this.reconnect);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
    await Promise.all(this.busy.values());
  }
}
