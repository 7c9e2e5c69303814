// The native per-model API, under /models/{name}/… and, for the default model, at the root.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cancelOnDisconnect } from '../disconnect.js';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { callerOf } from '../caller.js';
import { RequestOutcome } from '../../inference/outcome.js';
import { everyItemFailed, itemResults, outputOf, run, serving, withoutConfidence } from '../../inference/run.js';
import type { Manifest } from '../../manifest/schema.js';
import { errorEnvelope, okEnvelope } from '../envelope.js';
import { mediaBody } from '../media-body.js';
import { parsePrediction } from '../predict-request.js';
import { EventStream, wantsEventStream } from '../sse.js';
import { stickyKey } from '../sticky.js';
import { formatBytes, modelHealth, modelInfo, systemInfo, uptimeS } from '../describe.js';
import { PREDICT, PUBLIC } from '../../security/route-scope.js';
import { gpuAvailable } from '../../telemetry/gpu.js';

type NameResolver = (req: FastifyRequest) => string;

/** The task a failed request aimed at, only ever one the manifest declares: client text must not mint label values. */
function taskLabel(m: Manifest, body: unknown): string {
  const asked = (body as { task_type?: unknown } | null)?.task_type;
  const known =
    m.tasks.find((t) => t.name === asked) ??
    (asked === undefined ? (m.tasks.find((t) => t.name === m.default_task) ?? m.tasks[0]) : undefined);
  return known?.name ?? 'unknown';
}

function modelMetrics(gw: GatewayContext, name: string): Record<string, unknown> {
  const d = gw.registry.deployment(name);
  const h = modelHealth(gw, name);
  return {
    ...(d?.stats.summary() ?? {}),
    status: h.status,
    memory_usage: h.memory_usage,
    queue_depth: h.queue_depth,
    in_flight: h.in_flight,
    gpu_utilization: d?.gpuUtilization() ?? null,
  };
}

export function registerNativeRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const defaultName: NameResolver = () => {
    const n = gw.defaultModel();
    if (!n) throw new IsoError('MODEL_NOT_FOUND', 'no models are installed; add a package under the models dir');
    return n;
  };
  const paramName: NameResolver = (req) => (req.params as { name: string }).name;

  const predict =
    (kind: 'single' | 'batch', resolve: NameResolver) => async (req: FastifyRequest, reply: FastifyReply) => {
      const outcome = new RequestOutcome(gw, callerOf(req), kind, { batch: kind === 'batch' });
      outcome.taskHint = (m) => taskLabel(m, req.body);
      let sse: EventStream | null = null;
      try {
        const name = resolve(req);
        outcome.model = name;
        const dep = serving(gw, outcome, name, stickyKey(req));
        const body = (await mediaBody(req, kind)) ?? req.body;
        const parsed = parsePrediction(dep.pkg.manifest, body, kind, gw.config.max_batch_sequences);
        // Server-Sent Events: a `chunk` event per worker chunk, then `result` or `error`.
        if (kind === 'single' && wantsEventStream(req, parsed.stream)) sse = new EventStream(req, reply);
        const stream = sse;
        const outputs = await cancelOnDisconnect(reply, (signal) =>
          run(outcome, dep, parsed, {
            signal,
            ...(stream && { onChunk: (index: number, data: unknown) => stream.send('chunk', { index, data }) }),
          }),
        );
        const seconds = outcome.seconds();
        const keepConfidence = parsed.items[0]!.options.return_confidence !== false;
        const meta = { model: dep.name, version: dep.version, task_type: parsed.task.name };
        let data: Record<string, unknown>;
        let failed = 0;
        if (kind === 'single') {
          const out = outputOf(outputs[0]!);
          // Sequence tasks answer as they always have; other input types say what they took.
          const about =
            parsed.task.input_type === 'sequence'
              ? { sequence_length: parsed.sizes[0], sequence_type: parsed.sequenceTypes[0] }
              : { input_type: parsed.task.input_type, input_size: parsed.sizes[0] };
          data = { ...withoutConfidence(out, keepConfidence), processing_time: seconds, ...about, ...meta };
        } else {
          // Sequences are echoed (they are short text); other inputs (images…) are named by index.
          const which =
            parsed.task.input_type === 'sequence'
              ? (i: number) => ({ sequence: parsed.items[i]!.sequence })
              : (i: number) => ({ index: i });
          const results = itemResults(outputs, which, keepConfidence);
          failed = results.failed;
          if (failed === outputs.length)
            throw new IsoError('PREDICTION_FAILED', 'every sequence of the batch failed', {
              errors: everyItemFailed(results.predictions),
            });
          data = {
            predictions: results.predictions,
            processing_time: seconds,
            total_sequences: outputs.length,
            successful: outputs.length - failed,
            failed,
            ...meta,
          };
        }
        outcome.stop();
        const envelope = okEnvelope(
          req,
          data,
          failed ? `prediction done; ${failed} of ${outputs.length} sequences failed` : 'prediction done',
        );
        // The answer goes out before the bookkeeping: stats, metrics and the request log are off
        // the request's latency (their figures are taken above, at the moment of answering).
        let sent: FastifyReply;
        if (sse) {
          sse.send('result', envelope);
          sent = sse.end();
        } else sent = reply.send(envelope);
        outcome.ok();
        return sent;
      } catch (e) {
        const err = outcome.failed(e);
        // Before the first event the error is a plain JSON response; after it, an `error` event.
        if (sse?.open) {
          if (err.code === 'INTERNAL_ERROR') req.log.error({ err: e, reqId: req.id }, 'unhandled error');
          sse.send('error', errorEnvelope(req, err));
          return sse.end();
        }
        sse?.discard();
        throw e;
      }
    };

  const health = (resolve: NameResolver) => async (req: FastifyRequest) => {
    const name = resolve(req);
    const h = modelHealth(gw, name);
    const status = h.healthy ? 'healthy' : h.status === 'loading' ? 'starting' : 'unhealthy';
    return okEnvelope(
      req,
      {
        status,
        model: name,
        version: h.version,
        uptime: uptimeS(gw),
        gpu_available: gpuAvailable(),
        memory_usage: h.memory_usage,
        state: h.status,
        replicas: h.replicas,
        queue_depth: h.queue_depth,
        last_error: h.last_error,
      },
      status === 'healthy' ? 'service is healthy' : `model is ${h.status}`,
    );
  };

  const info = (resolve: NameResolver) => async (req: FastifyRequest) =>
    okEnvelope(req, modelInfo(gw, resolve(req)), 'model info');

  const metrics = (resolve: NameResolver | null) => async (req: FastifyRequest) => {
    const system = { ...systemInfo(), gateway_memory_usage: formatBytes(process.memoryUsage().rss) };
    if (resolve)
      return okEnvelope(
        req,
        { model: resolve(req), model_metrics: modelMetrics(gw, resolve(req)), system_metrics: system },
        'metrics',
      );
    const names = gw.registry.names();
    const def = gw.defaultModel();
    return okEnvelope(
      req,
      {
        model: def ?? null,
        model_metrics: def ? modelMetrics(gw, def) : {},
        models: Object.fromEntries(names.map((n) => [n, modelMetrics(gw, n)])),
        system_metrics: system,
      },
      'metrics',
    );
  };

  // Default model at the root.
  app.get('/health', PUBLIC, async (req) => {
    const def = gw.defaultModel();
    if (def) return health(() => def)(req);
    return okEnvelope(
      req,
      { status: 'healthy', model: null, uptime: uptimeS(gw), gpu_available: gpuAvailable(), models: [] },
      'no models installed',
    );
  });
  app.get('/model/info', PREDICT, info(defaultName));
  // Prediction bodies may carry images and audio (JSON base64, raw, multipart): a larger limit.
  const predictRoute = { ...PREDICT, bodyLimit: gw.config.predict_body_limit_bytes };
  app.post('/predict', predictRoute, predict('single', defaultName));
  app.post('/predict/batch', predictRoute, predict('batch', defaultName));
  app.get('/metrics', PREDICT, metrics(null));
  // Prometheus text exposition; /metrics stays the JSON summary of the native API contract.
  app.get('/metrics/prometheus', gw.config.auth.public_metrics ? PUBLIC : PREDICT, async (_req, reply) => {
    const { contentType, body } = await gw.metrics.exposition();
    return reply.type(contentType).send(body);
  });

  // Every model under /models/{name}.
  app.get('/models/:name/health', PREDICT, health(paramName));
  app.get('/models/:name/info', PREDICT, info(paramName));
  app.get('/models/:name/model/info', PREDICT, info(paramName));
  app.post('/models/:name/predict', predictRoute, predict('single', paramName));
  app.post('/models/:name/predict/batch', predictRoute, predict('batch', paramName));
  app.get('/models/:name/metrics', PREDICT, metrics(paramName));
}
