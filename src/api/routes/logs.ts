// Replica log files (telemetry/replica-logs.ts) read back: GET /v1/models/{name}/logs?replica=&tail=&follow=
// and seed 001's GET /api/containers/{name}/logs (the container's replicas). Without follow: the
// last `tail` lines in the envelope. With follow=true: those lines, then every new line as it is
// written, as NDJSON ({replica, time, line} per line) until the client goes away or the gateway
// stops; rotation is followed (the rest of the rotated file, then the new one).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { admin } from '../../security/route-scope.js';
import { listLogFiles, parseLogLine, REPLICA_ID, tailModel, type LogLine } from '../../telemetry/replica-logs.js';
import { okEnvelope } from '../envelope.js';
import { parseBody } from '../body.js';

export const MAX_TAIL = 10_000;
const POLL_MS = 250;
/** Most bytes one file is read per poll (a flood is followed in steps, not in one read). */
const READ_STEP = 1024 * 1024;

const query = z
  .object({
    replica: z.string().regex(REPLICA_ID, 'a replica id (e.g. r3)').optional(),
    tail: z.coerce.number().int().min(0).max(MAX_TAIL).default(100),
    follow: z.enum(['true', 'false', '1', '0']).optional(),
  })
  .strict();

/** Reads what was appended to a file since `pos` (at most READ_STEP bytes). */
function readFrom(path: string, pos: number): { text: string; pos: number } {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const len = Math.min(READ_STEP, size - pos);
    if (len <= 0) return { text: '', pos };
    const buf = Buffer.alloc(len);
    const got = readSync(fd, buf, 0, len, pos);
    return { text: buf.toString('utf8', 0, got), pos: pos + got };
  } finally {
    closeSync(fd);
  }
}

/** Everything from `pos` to the end of a file that no longer grows (a rotated one). */
function readRest(path: string, pos: number): string {
  let text = '';
  for (let p = pos; ;) {
    const got = readFrom(path, p);
    if (got.pos === p) return text;
    text += got.text;
    p = got.pos;
  }
}

interface Cursor {
  ino: number;
  pos: number;
  /** A line read in part (no newline yet). */
  partial: string;
}

function follow(
  gw: GatewayContext,
  req: FastifyRequest,
  reply: FastifyReply,
  dir: string,
  model: string,
  replicas: () => readonly string[] | undefined,
  first: LogLine[],
  streams: Set<() => void>,
): void {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'application/x-ndjson; charset=utf-8',
    'cache-control': 'no-cache',
    'x-request-id': req.id,
  });
  // Headers out now: a client following a quiet model must not wait for its first line.
  raw.flushHeaders();
  for (const l of first) raw.write(`${JSON.stringify(l)}\n`);
  const cursors = new Map<string, Cursor>();
  const current = (): { replica: string; path: string }[] => {
    const only = replicas();
    return listLogFiles(dir)
      .filter((f) => f.index === 0 && (!only || only.includes(f.replica)))
      .map((f) => ({ replica: f.replica, path: join(dir, f.file) }));
  };
  // Start at the current ends: `first` already holds what was there.
  for (const f of current()) {
    const st = statSync(f.path);
    cursors.set(f.replica, { ino: st.ino, pos: st.size, partial: '' });
  }
  const emit = (replica: string, c: Cursor, text: string): void => {
    const parts = (c.partial + text).split('\n');
    c.partial = parts.pop() ?? '';
    for (const p of parts) raw.write(`${JSON.stringify(parseLogLine(replica, p))}\n`);
  };
  let busy = false;
  const tick = (): void => {
    if (busy || raw.writableNeedDrain) return;
    busy = true;
    try {
      gw.replicaLogs?.flush(model);
      for (const f of current()) {
        let st;
        try {
          st = statSync(f.path);
        } catch {
          continue;
        }
        let c = cursors.get(f.replica);
        if (!c) {
          c = { ino: st.ino, pos: 0, partial: '' };
          cursors.set(f.replica, c);
        }
        if (c.ino !== st.ino) {
          // Rotated (once or more since the last look): the rest of the file we were reading,
          // now `.log.<k>`, then the newer rotated files whole, then the new current file.
          const keep = gw.replicaLogs?.limits.keep ?? 0;
          const rotated = Array.from({ length: keep }, (_, i) => `${f.path}.${i + 1}`);
          const at = rotated.findIndex((p) => {
            try {
              return statSync(p).ino === c!.ino;
            } catch {
              return false;
            }
          });
          if (at >= 0) {
            emit(f.replica, c, readRest(rotated[at]!, c.pos));
            for (let k = at - 1; k >= 0; k--) emit(f.replica, c, readRest(rotated[k]!, 0));
          }
          c.ino = st.ino;
          c.pos = 0;
          c.partial = '';
        }
        if (st.size > c.pos) {
          const got = readFrom(f.path, c.pos);
          c.pos = got.pos;
          emit(f.replica, c, got.text);
        }
      }
    } catch (e) {
      gw.logger.warn({ model, error: (e as Error).message }, 'log follow');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(tick, POLL_MS);
  const end = (): void => {
    clearInterval(timer);
    streams.delete(end);
    if (!raw.writableEnded) raw.end();
  };
  streams.add(end);
  raw.on('close', end);
}

export function registerLogRoutes(app: FastifyInstance, gw: GatewayContext): void {
  // Open follow streams: ended as the gateway begins to close (preClose), or its close would wait for them.
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  const logsOf = (
    req: FastifyRequest,
    reply: FastifyReply,
    model: string,
    replicas: () => readonly string[] | undefined,
    label: Record<string, unknown>,
  ) => {
    const q = parseBody(query, req.query);
    if (!gw.replicaLogs)
      throw new IsoError('NOT_FOUND', 'per-replica log files are turned off (config log_files.enabled)');
    const dir = gw.replicaLogs.modelDir(model);
    gw.replicaLogs.flush(model);
    const only = q.replica ? [q.replica] : replicas();
    const lines = tailModel(dir, q.tail, only);
    if (q.follow === 'true' || q.follow === '1') {
      follow(gw, req, reply, dir, model, () => (q.replica ? [q.replica] : replicas()), lines, streams);
      return reply;
    }
    const files = [...new Set(listLogFiles(dir).map((f) => f.replica))].filter((r) => !only || only.includes(r)).sort();
    return okEnvelope(req, { ...label, replica: q.replica ?? null, replicas: files, lines }, `${lines.length} lines`);
  };

  app.get<{ Params: { name: string } }>('/v1/models/:name/logs', admin('models.logs'), async (req, reply) => {
    const name = gw.registry.package(req.params.name).manifest.name;
    return logsOf(req, reply, name, () => undefined, { model: name });
  });

  app.get<{ Params: { name: string } }>('/api/containers/:name/logs', admin('containers.logs'), async (req, reply) => {
    const c = gw.containers.describe(req.params.name) as { model_id: string; replicas: { id: string }[] };
    // The container's replicas as it runs now (a stopped container: the ones it last had).
    const ids = c.replicas.map((r) => r.id);
    const known = gw.containers.replicaHistory(req.params.name);
    return logsOf(req, reply, c.model_id, () => [...new Set([...known, ...ids])], {
      container_name: req.params.name,
      model_id: c.model_id,
    });
  });
}
