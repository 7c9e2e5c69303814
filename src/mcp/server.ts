// The MCP (Model Context Protocol) face of a gateway: one tool per model task plus
// analyze_sequences, list_models and model_info, all built from the manifests the registry holds
// right now. A task tool's input schema is its task's input type (sequences, text, the task's own
// JSON Schema, named tensors, base64 images or audio, chat conversations): one tool per task
// rather than one `predict` tool with a oneOf of every task, because each host then shows the
// model one exact schema, and several tool-calling APIs refuse a top-level oneOf. Both transports (stdio: cli/mcp.ts, Streamable HTTP: mcp/http.ts) serve this server.
//
// Tools are answered by our own tools/list and tools/call handlers on the McpServer's underlying
// Server, not by McpServer.registerTool: registerTool wants zod schemas (our schemas come from
// manifests as JSON Schema) and validates arguments itself, which would replace the REST API's
// error codes (INVALID_SEQUENCE, SEQUENCE_TOO_LONG, …) by a generic message. Computing the list on
// every request also means it can never go stale; a light poll of the registry sends
// notifications/tools/list_changed when a model is loaded, unloaded, reloaded, added or removed.
//
// Here: the server and its handlers. tools.ts: the tool list; schemas.ts: argument schemas;
// calls.ts: tool calls (on the common inference path, src/inference); watch.ts: list_changed.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { InferenceContext } from '../inference/context.js';
import { PACKAGE_VERSION } from '../paths.js';
import { callTool } from './calls.js';
import { listTools } from './tools.js';
import { watchFor } from './watch.js';

export interface McpServerOptions {
  /** How often the registry is compared with the last tool list sent (ms). Default 500. */
  watchIntervalMs?: number;
  /** Recorded as the request log's route ("mcp:stdio", "mcp:http"). */
  transport?: string;
}

const INSTRUCTIONS =
  'isomodel serves models of many input types: bio sequences (DNA, RNA, protein), text, JSON, tensors, images, ' +
  'audio and chat. Each tool named <model>__<task> runs one task of one model on a batch: `sequences` for sequence ' +
  'tasks, `inputs` for every other type (its schema says what one input is; images and audio are base64). ' +
  'analyze_sequences picks the model for a task_type on sequences by itself. list_models and model_info describe ' +
  'what is installed. Errors carry the codes of the isomodel REST API (INVALID_SEQUENCE, SEQUENCE_TOO_LONG, ' +
  'INVALID_INPUT, INPUT_TOO_LONG, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE, MODEL_NOT_FOUND, MODEL_NOT_LOADED, …).';

/**
 * A new MCP server over `gw` (one per client connection / HTTP session). Its tools are answered by
 * handlers on `server.server`; do not call `registerTool` on it. Closing it stops its
 * list_changed subscription.
 */
export function createMcpServer(gw: InferenceContext, opts: McpServerOptions = {}): McpServer {
  const route = `mcp:${opts.transport ?? 'stdio'}`;
  const mcp = new McpServer(
    { name: 'isomodel', title: 'isomodel', version: PACKAGE_VERSION },
    { instructions: INSTRUCTIONS },
  );
  const server = mcp.server;
  server.registerCapabilities({ tools: { listChanged: true } });

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listTools(gw) }));

  server.setRequestHandler(CallToolRequestSchema, (req, extra): Promise<CallToolResult> =>
    callTool(gw, route, req.params.name, req.params.arguments, extra),
  );

  let unsubscribe: (() => void) | null = null;
  server.oninitialized = () => {
    unsubscribe ??= watchFor(gw, opts.watchIntervalMs ?? 500).subscribe(() => {
      server.sendToolListChanged().catch(() => undefined);
    });
  };
  server.onclose = () => {
    unsubscribe?.();
    unsubscribe = null;
  };
  return mcp;
}
