// What the inference path needs of a gateway. Every surface (REST routes, MCP, jobs) is handed
// an object with these members; the Gateway class (src/gateway.ts) is one. Typed here, below the
// surfaces, so that no surface has to import the module that composes them.
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { StateStore } from '../store/db.js';
import type { GatewayMetrics } from '../telemetry/prometheus.js';

export interface InferenceContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly registry: ModelRegistry;
  readonly metrics: GatewayMetrics;
  readonly store: StateStore;
}
