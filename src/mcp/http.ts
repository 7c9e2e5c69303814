// MCP over Streamable HTTP at /mcp on the gateway, in session mode: an initialize POST opens a
// session (its id comes back in the Mcp-Session-Id header), later POSTs carry that header, a GET
// opens the session's server-to-client SSE stream (notifications/tools/list_changed when the
// registry changes), DELETE ends it. Each session has its own McpServer over the same gateway.
// Sessions idle for `idleMs` with no open stream are closed; at most `maxSessions` live at once
// (the least recently used idle one makes room). A session belongs to the API key that opened it.
// Authentication, rate limiting and the body limit of the gateway apply as on every other route.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { InferenceContext } from '../inference/context.js';
import { toIsoError } from '../api/envelope.js';
import { PREDICT } from '../security/route-scope.js';

/**
 * The MCP SDK and our server on it, loaded with the first /mcp request: together they are about
 * 25 MB of the gateway's idle RSS, which a gateway nobody reaches over MCP need not pay.
 */
let sdkModules: Promise<{
  StreamableHTTPServerTransport: typeof StreamableHTTPServerTransport;
  isInitializeRequest: (typeof import('@modelcontextprotocol/sdk/types.js'))['isInitializeRequest'];
  createMcpServer: (typeof import('./server.js'))['createMcpServer'];
}> | null = null;
const loadSdk = (): NonNullable<typeof sdkModules> =>
  (sdkModules ??= Promise.all([
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
    import('./server.js'),
  ]).then(([h, t, s]) => ({
    StreamableHTTPServerTransport: h.StreamableHTTPServerTransport,
    isInitializeRequest: t.isInitializeRequest,
    createMcpServer: s.createMcpServer,
  })));

export interface McpHttpOptions {
  /** Close a session after this long without requests or open streams (default 30 min). */
  idleMs?: number;
  /** Most sessions at once (default 1000). */
  maxSessions?: number;
  /** Registry poll for list_changed (ms), see createMcpServer. */
  watchIntervalMs?: number;
}

interface Session {
  id: string;
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  lastSeen: number;
  /** HTTP exchanges still open (an SSE stream counts until the client drops it). */
  open: number;
  /** The API key that opened it (null with auth off): only that key may use it. */
  owner: string | null;
}

/** Who is asking, as the gateway's auth hook recorded it (null when auth is off or absent). */
function ownerOf(req: FastifyRequest): string | null {
  return (req as { principal?: { id?: string } | null }).principal?.id ?? null;
}

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

export function registerMcpRoutes(app: FastifyInstance, gw: InferenceContext, opts: McpHttpOptions = {}): void {
  const idleMs = opts.idleMs ?? 30 * 60_000;
  const maxSessions = opts.maxSessions ?? 1000;
  const sessions = new Map<string, Session>();
  const log = gw.logger.child({ component: 'mcp' });

  const closeSession = async (s: Session): Promise<void> => {
    sessions.delete(s.id);
    await s.server.close().catch(() => undefined);
  };

  const sweeper = setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const s of sessions.values()) if (s.open === 0 && s.lastSeen < cutoff) void closeSession(s);
    },
    Math.min(60_000, Math.max(1000, idleMs / 2)),
  );
  sweeper.unref();

  /** Room for one more session: false when every session is busy. */
  const makeRoom = (): boolean => {
    if (sessions.size < maxSessions) return true;
    let lru: Session | undefined;
    for (const s of sessions.values()) if (s.open === 0 && (!lru || s.lastSeen < lru.lastSeen)) lru = s;
    if (!lru) return false;
    log.warn({ session: lru.id }, 'MCP session limit reached; closing the least recently used idle session');
    void closeSession(lru);
    return true;
  };

  /** Tracks one HTTP exchange of a session: open until the response is closed. */
  const track = (s: Session, res: ServerResponse): void => {
    s.open++;
    s.lastSeen = Date.now();
    res.once('close', () => {
      s.open--;
      s.lastSeen = Date.now();
    });
  };

  /** A transport + server for an initialize request; it becomes a session if initialize succeeds. */
  const openSession = async (res: ServerResponse, owner: string | null): Promise<StreamableHTTPServerTransport> => {
    const { StreamableHTTPServerTransport, createMcpServer } = await loadSdk();
    const server = createMcpServer(gw, { transport: 'http', watchIntervalMs: opts.watchIntervalMs });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      onsessioninitialized: (id) => {
        const s: Session = { id, transport, server, lastSeen: Date.now(), open: 0, owner };
        sessions.set(id, s);
        track(s, res);
        log.debug({ session: id }, 'MCP session opened');
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
        log.debug({ session: id }, 'MCP session closed by the client');
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    return transport;
  };

  const handle = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const { isInitializeRequest } = await loadSdk();
    const header = req.headers['mcp-session-id'];
    const sid = typeof header === 'string' ? header : undefined;
    const found = sid ? sessions.get(sid) : undefined;
    // A session id presented with another API key is treated as unknown.
    const session = found && found.owner === ownerOf(req) ? found : undefined;
    let transport: StreamableHTTPServerTransport;
    reply.hijack();
    const res = reply.raw;
    if (sid && !session) return jsonRpcError(res, 404, -32001, 'Session not found');
    if (session) {
      transport = session.transport;
      track(session, res);
    } else {
      if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
        return jsonRpcError(
          res,
          400,
          -32000,
          'Bad Request: no Mcp-Session-Id; open a session with an initialize request first',
        );
      }
      if (!makeRoom()) return jsonRpcError(res, 503, -32000, 'Too many MCP sessions; retry later');
      transport = await openSession(res, ownerOf(req));
    }
    try {
      await transport.handleRequest(req.raw, res, req.body);
    } catch (e) {
      log.error({ err: e }, 'MCP request failed');
      jsonRpcError(res, 500, -32603, 'Internal error');
    }
    // A failed initialize never became a session: drop its server.
    if (!session && !(transport.sessionId && sessions.has(transport.sessionId)))
      await transport.close().catch(() => undefined);
  };

  // An encapsulated scope whose error handler answers in JSON-RPC: a body Fastify cannot parse
  // (bad JSON, another content type, over the body limit) used to get the native envelope,
  // which an MCP client cannot read (found by test/fuzz.test.ts).
  void app.register(async (scope) => {
    scope.setErrorHandler((e, req, reply) => {
      const iso = toIsoError(e);
      if (iso.code === 'INTERNAL_ERROR') req.log.error({ err: e, reqId: req.id }, 'MCP request failed');
      const fastifyCode = (e as { code?: unknown }).code;
      // -32700 Parse error for a body that is not JSON (or not a JSON content type); -32600 otherwise.
      const unparsable =
        e instanceof SyntaxError || (typeof fastifyCode === 'string' && fastifyCode.startsWith('FST_ERR_CTP_'));
      const rpc = iso.status >= 500 ? -32603 : unparsable ? -32700 : -32600;
      if (iso.retryAfterS !== undefined) void reply.header('retry-after', String(iso.retryAfterS));
      return reply.code(iso.status).send({ jsonrpc: '2.0', error: { code: rpc, message: iso.message }, id: null });
    });
    scope.post('/mcp', PREDICT, handle);
    scope.get('/mcp', PREDICT, handle);
    scope.delete('/mcp', PREDICT, handle);
  });

  // Before the server stops: end SSE streams, which would otherwise keep it open.
  app.addHook('preClose', async () => {
    clearInterval(sweeper);
    await Promise.all([...sessions.values()].map((s) => closeSession(s)));
  });
}
