// Failed authentications per client address, counted before any key is looked up: a client
// guessing keys (or flooding bogus ones) gets 429 instead of a key lookup and an audit row for
// every attempt. A fixed window per address; the table of addresses is bounded.

export interface FailureLimit {
  /** Failures allowed per window and address; 0 turns the limiter off. */
  max: number;
  windowMs: number;
  /** Addresses tracked at once; past it the oldest windows are dropped first. */
  maxClients?: number;
}

interface Window {
  start: number;
  failures: number;
}

export class AuthFailureLimiter {
  /** Insertion order is window-start order (a client's entry is re-inserted when its window restarts). */
  private readonly clients = new Map<string, Window>();
  private readonly maxClients: number;

  constructor(
    private readonly limit: FailureLimit,
    private readonly now: () => number = Date.now,
  ) {
    this.maxClients = limit.maxClients ?? 100_000;
  }

  /** Seconds until `client` may try again, or 0 when it may try now. */
  retryAfterS(client: string): number {
    if (this.limit.max <= 0) return 0;
    const w = this.current(client);
    if (!w || w.failures < this.limit.max) return 0;
    return Math.max(1, Math.ceil((w.start + this.limit.windowMs - this.now()) / 1000));
  }

  /** Records one failed authentication of `client`. */
  fail(client: string): void {
    if (this.limit.max <= 0) return;
    let w = this.current(client);
    if (!w) {
      w = { start: this.now(), failures: 0 };
      this.clients.set(client, w);
      this.evict();
    }
    w.failures++;
  }

  get size(): number {
    return this.clients.size;
  }

  private current(client: string): Window | undefined {
    const w = this.clients.get(client);
    if (w && this.now() - w.start >= this.limit.windowMs) {
      this.clients.delete(client);
      return undefined;
    }
    return w;
  }

  private evict(): void {
    // Expired windows first (they sit at the front), then the oldest live ones if still too many.
    const now = this.now();
    for (const [client, w] of this.clients) {
      if (this.clients.size <= this.maxClients && now - w.start < this.limit.windowMs) break;
      this.clients.delete(client);
    }
  }
}
