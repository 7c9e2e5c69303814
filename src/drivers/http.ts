// runtime http (docs/models.md): the adapter's configuration from the manifest. The adapter
// (worker/http-adapter.ts) runs as the replica's worker: beside the server's process under the
// process and sandbox drivers, in a container sharing the server container's network under docker.
import type { Manifest } from '../manifest/schema.js';
import { EXIT_SERVER_GONE, EXIT_UNHEALTHY, type HttpAdapterConfig } from '../worker/http-adapter.js';

/** The adapter's exit codes (worker/http-adapter.ts), as reasons. */
const ADAPTER_EXITS: Record<number, string> = {
  [EXIT_SERVER_GONE]: "the model's server exited",
  [EXIT_UNHEALTHY]: "the model's server failed its health checks",
};

/** Why an http model's worker exited with `code`, when the adapter says; else undefined. */
export function httpExitReason(m: Manifest, code: number | null): string | undefined {
  return m.runtime === 'http' && code !== null ? ADAPTER_EXITS[code] : undefined;
}

const MB = 1024 * 1024;

/**
 * Memory of the adapter's own container (docker): node itself, plus room for the answers of one
 * batch, parsed and re-serialised (bounded by max_response_bytes per answer and 48 MiB in all).
 */
export function httpAdapterMemoryMb(m: Manifest): number {
  const answers = Math.min(
    48 * MB,
    m.http!.max_response_bytes * (m.http!.batch === 'list' ? 1 : m.batching.max_batch_size),
  );
  return 128 + 6 * Math.ceil(answers / MB);
}

/**
 * ISOMODEL_HTTP for the adapter. `modelDir` replaces {model_dir} in the server's command line;
 * with `serverCommand` false (docker: the server is its own container) the adapter starts nothing.
 * `serverMemoryMb`: the address-space rlimit the adapter puts on the server (no cgroup to bound it).
 */
export function httpAdapterConfig(
  m: Manifest,
  modelDir: string,
  serverCommand: boolean,
  serverMemoryMb: number | null = null,
): HttpAdapterConfig {
  const h = m.http!;
  const argv = Array.isArray(m.entry) ? m.entry : m.entry ? ['/bin/sh', '-c', m.entry] : [];
  return {
    port: h.port ?? null,
    health_path: h.health_path,
    predict_path: h.predict_path,
    method: h.method,
    request: h.request,
    response: h.response,
    batch: h.batch,
    max_response_bytes: h.max_response_bytes,
    startup_timeout_ms: h.startup_timeout_ms,
    health_interval_ms: h.health_interval_ms,
    health_timeout_ms: h.health_timeout_ms,
    unhealthy_after: h.unhealthy_after,
    command: serverCommand && argv.length ? argv.map((a) => a.replaceAll('{model_dir}', modelDir)) : null,
    server_memory_mb: serverCommand ? serverMemoryMb : null,
  };
}
