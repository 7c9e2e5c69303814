// The scheduler's port for what a deployment reports as work flows through it. Telemetry
// implements it (GatewayMetrics.observerFor in telemetry/prometheus.ts); the scheduler only
// calls it, so the scheduler never imports telemetry.

/** What a deployment reports as work flows through it. */
export interface DeploymentObserver {
  queued(seconds: number): void;
  batch(size: number, computeSeconds: number, ok: boolean): void;
  /** A batch of a model batched by length: its tokens padded to the longest item, and how many are padding. */
  tokens(padded: number, padding: number): void;
  restart(reason: string): void;
}
