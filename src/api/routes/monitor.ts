// The monitoring API under /v1/monitor: current metrics, summary, history with trends, state
// events, alerts, webhook deliveries and the runtime thresholds.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { AlertKind, AlertState } from '../../telemetry/alerts.js';
import { parseWindow } from '../../telemetry/series.js';
import { okEnvelope } from '../envelope.js';
import { admin, PREDICT } from '../../security/route-scope.js';

type Query = Record<string, string | undefined>;

/** A repeated key (?model=a&model=b) arrives as an array: refuse it rather than pass it on. */
function queryOf(raw: unknown): Query {
  const q = (raw ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && typeof v !== 'string')
      throw new IsoError('INVALID_REQUEST', `query parameter "${k.slice(0, 40)}" must be given once`);
  }
  return q as Query;
}

const settingsPatch = z
  .object({
    cpu_percent: z.number().positive().max(100_000),
    memory_percent: z.number().positive().max(10_000),
    disk_percent: z.number().positive().max(100),
    restart_unhealthy: z.boolean(),
    alert_after_samples: z.number().int().min(1).max(10_000),
    restart_after_samples: z.number().int().min(1).max(10_000),
  })
  .partial()
  .strict();

function intParam(q: Query, name: string, fallback: number, min: number, max: number): number {
  const raw = q[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new IsoError('INVALID_REQUEST', `${name} must be an integer between ${min} and ${max}`);
  return n;
}

function oneOf<T extends string>(q: Query, name: string, allowed: readonly T[]): T | undefined {
  const raw = q[name];
  if (raw === undefined || raw === '') return undefined;
  if (!(allowed as readonly string[]).includes(raw))
    throw new IsoError('INVALID_REQUEST', `${name} must be one of ${allowed.join(', ')}`);
  return raw as T;
}

export function registerMonitorRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const mon = () => gw.monitor;

  app.get('/v1/monitor/summary', PREDICT, async (req) => okEnvelope(req, mon().summary(), 'monitoring summary'));

  app.get('/v1/monitor/metrics', PREDICT, async (req) =>
    okEnvelope(req, { models: mon().allModelMetrics(), system: mon().systemMetrics() }, 'current metrics'),
  );

  app.get<{ Params: { name: string } }>('/v1/monitor/metrics/:name', PREDICT, async (req) =>
    okEnvelope(req, mon().modelMetrics(req.params.name), `current metrics of ${req.params.name}`),
  );

  app.get('/v1/monitor/history', PREDICT, async (req) => {
    const q = queryOf(req.query);
    const windowMs = parseWindow(q.window, '1h');
    const points = intParam(q, 'points', 120, 2, 2000);
    const names = q.model ? [gw.registry.package(q.model).manifest.name] : gw.registry.names();
    return okEnvelope(
      req,
      {
        window_s: Math.round(windowMs / 1000),
        models: names.map((n) => mon().history(n, windowMs, points)),
        system: mon().systemHistory(windowMs, points),
      },
      'monitoring history',
    );
  });

  app.get<{ Params: { name: string } }>('/v1/monitor/history/:name', PREDICT, async (req) => {
    const q = queryOf(req.query);
    gw.registry.package(req.params.name);
    return okEnvelope(
      req,
      mon().history(req.params.name, parseWindow(q.window, '1h'), intParam(q, 'points', 120, 2, 2000)),
      `history of ${req.params.name}`,
    );
  });

  app.get('/v1/monitor/events', PREDICT, async (req) => {
    const q = queryOf(req.query);
    const since = q.window ? Date.now() - parseWindow(q.window) : undefined;
    return okEnvelope(
      req,
      { events: mon().events({ model: q.model, sinceMs: since, limit: intParam(q, 'limit', 200, 1, 5000) }) },
      'state history',
    );
  });

  app.get('/v1/monitor/alerts', PREDICT, async (req) => {
    const q = queryOf(req.query);
    const state = oneOf<AlertState | 'all'>(q, 'state', ['firing', 'resolved', 'all']) ?? 'all';
    const kind = oneOf<AlertKind>(q, 'kind', ['cpu', 'memory', 'disk', 'health']);
    const since = q.window ? Date.now() - parseWindow(q.window) : undefined;
    const alerts = mon().alerts.list({
      state,
      kind,
      model: q.model,
      sinceMs: since,
      limit: intParam(q, 'limit', 100, 1, 1000),
      history: q.history !== 'false',
    });
    const counts = mon().alerts.counts();
    return okEnvelope(req, { active: counts.firing, total: counts.total, alerts }, `${counts.firing} active alerts`);
  });

  // Admin: delivery rows carry the webhook URL, which often holds a token.
  app.get('/v1/monitor/webhooks', admin('monitor.webhooks.read'), async (req) => {
    const q = queryOf(req.query);
    return okEnvelope(
      req,
      {
        configured: mon().alerts.webhook.enabled(),
        deliveries: mon().alerts.webhook.deliveries(intParam(q, 'limit', 50, 1, 1000)),
      },
      'webhook deliveries',
    );
  });

  app.get('/v1/monitor/thresholds', PREDICT, async (req) => okEnvelope(req, mon().getSettings(), 'monitor thresholds'));

  app.put('/v1/monitor/thresholds', admin('monitor.thresholds'), async (req) => {
    const parsed = settingsPatch.safeParse(req.body ?? {});
    if (!parsed.success)
      throw new IsoError('INVALID_REQUEST', 'invalid thresholds', {
        issues: parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`),
      });
    return okEnvelope(req, await mon().updateSettings(parsed.data), 'thresholds updated');
  });

  app.delete('/v1/monitor/thresholds', admin('monitor.thresholds.reset'), async (req) =>
    okEnvelope(req, await mon().resetSettings(), 'thresholds reset to the configuration'),
  );

  /** Everything the web console shows, in one call (it polls this). */
  app.get('/v1/monitor/overview', PREDICT, async (req) => {
    const m = mon();
    return okEnvelope(
      req,
      {
        summary: m.summary(),
        models: m.allModelMetrics(),
        default_model: gw.defaultModel() ?? null,
        alerts: { active: m.alerts.active(), recent: m.alerts.list({ limit: 20, history: false }) },
        thresholds: m.getSettings(),
      },
      'overview',
    );
  });
}
