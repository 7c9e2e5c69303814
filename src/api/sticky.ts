// The optional key that pins a client to one version of a model under an A/B or canary split.
import type { FastifyRequest } from 'fastify';

export const STICKY_HEADER = 'x-sticky-key';

export function stickyKey(req: FastifyRequest, fallback?: unknown): string | undefined {
  const h = req.headers[STICKY_HEADER];
  const v = Array.isArray(h) ? h[0] : h;
  if (v) return v.slice(0, 256);
  return typeof fallback === 'string' && fallback ? fallback.slice(0, 256) : undefined;
}
