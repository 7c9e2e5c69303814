// Seed 001's model-management API (../shared/spec/001_*.txt) as a compatibility surface over
// isomodel's own objects (docs/model-management.md): POST /api/models/download pulls a package or
// a model's weights (src/pull).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { isValidModelName } from '../../manifest/load.js';
import { pull, pullSettings, pulledWeightsInfo, type PullResult } from '../../pull/pull.js';
import { admin } from '../../security/route-scope.js';
import { describeZod } from '../../validation/zod-message.js';
import { okEnvelope } from '../envelope.js';

const modelId = z.string().min(1).max(64).refine(isValidModelName, 'a model name: lowercase letters, digits, "-", "_" and "."');

const downloadBody = z
  .object({
    model_id: modelId,
    /** Seed 001's field; descriptive here (the package's manifest says what the model does). */
    model_type: z.string().max(100).optional(),
    /** A folder or .tar.gz on the gateway's machine, an http(s) URL, or hf:<org>/<repo>[@revision]. */
    source: z.string().min(1).max(4096).optional(),
    /** package: install a model package; weights: fill model_id's weights. Default: weights when model_id is a package that declares weights. */
    kind: z.enum(['package', 'weights']).optional(),
    /** Replace a package that is already in the models dir. */
    force: z.boolean().optional(),
    /** Hub sources: only the files matching these globs. */
    include: z.array(z.string().min(1).max(256)).max(64).optional(),
  })
  .strict();

export function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new IsoError('INVALID_REQUEST', describeZod(r.error));
  return r.data as z.infer<T>;
}

/** An AbortSignal that fires when the client goes away before the answer is sent. */
function abortOnDisconnect(reply: FastifyReply): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) ac.abort(new IsoError('CANCELLED', 'the client went away'));
  };
  reply.raw.on('close', onClose);
  return { signal: ac.signal, done: () => reply.raw.off('close', onClose) };
}

/** After new weights: (re)start the model so its workers get them; reports how that went. */
async function restartWithWeights(gw: Gateway, model: string): Promise<{ status: string; error: string | null }> {
  try {
    if (gw.registry.status(model) === 'ready') await gw.registry.unload(model);
    await gw.registry.load(model);
  } catch {
    // reported below: the pull itself succeeded
  }
  return { status: gw.registry.status(model), error: gw.registry.lastError(model) ?? null };
}

export function registerSeed001Routes(app: FastifyInstance, gw: Gateway): void {
  app.post('/api/models/download', admin('models.download'), async (req, reply) => {
    const b = parseBody(downloadBody, req.body);
    const known = gw.registry.names().includes(b.model_id);
    const manifest = known ? gw.registry.package(b.model_id).manifest : undefined;
    const kind = b.kind ?? (manifest?.weights ? 'weights' : 'package');
    if (kind === 'weights' && !manifest) throw new IsoError('MODEL_NOT_FOUND', `no model ${b.model_id}: download its package first`);
    const source = b.source ?? (kind === 'weights' ? manifest?.weights?.source : undefined);
    if (!source) {
      if (known && kind === 'package') {
        return okEnvelope(req, { model_id: b.model_id, model_type: b.model_type ?? null, kind, status: gw.registry.status(b.model_id), path: gw.registry.package(b.model_id).dir, downloaded: false }, `model ${b.model_id} is already installed`);
      }
      throw new IsoError('INVALID_REQUEST', kind === 'weights' ? `model ${b.model_id} names no default weights source (weights.source): give source` : `model ${b.model_id} is not installed: give source (a folder, a .tar.gz, an http(s) URL or hf:<org>/<repo>[@revision])`);
    }
    const { signal, done } = abortOnDisconnect(reply);
    let result: PullResult;
    try {
      result = await pull(
        kind === 'weights'
          ? { source, forModel: b.model_id, forManifest: manifest, include: b.include, signal }
          : { source, expectName: b.model_id, force: b.force, include: b.include, signal },
        pullSettings(gw.config),
      );
    } finally {
      done();
    }
    let load: { status: string; error: string | null };
    if (kind === 'weights') load = await restartWithWeights(gw, b.model_id);
    else {
      await gw.registry.reload();
      load = { status: gw.registry.status(b.model_id), error: gw.registry.lastError(b.model_id) ?? null };
    }
    const message = `${kind === 'weights' ? `weights of ${b.model_id}` : `model ${b.model_id}`} downloaded (${result.files} files, ${result.bytes} bytes); ${load.status}`;
    return reply.code(201).send(okEnvelope(req, { model_id: b.model_id, model_type: b.model_type ?? null, ...result, status: load.status, last_error: load.error, downloaded: true }, message));
  });
}

/** What a model's pulled weights are (for listings): the marker's contents, or null. */
export function weightsOf(gw: Gateway, model: string): Record<string, unknown> | null {
  return pulledWeightsInfo(pullSettings(gw.config).weightsDir, model);
}
