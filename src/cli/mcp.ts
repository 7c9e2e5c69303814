// `isomodel mcp`: the models of the models dir as an MCP server on stdin/stdout, for MCP hosts
// that start their servers as child processes (Claude Desktop, IDEs, agents). No HTTP listener.
// stdout carries only MCP messages; every log line goes to stderr.
import { destination, pino } from 'pino';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Config } from '../config/config.js';
import { Gateway } from '../gateway.js';
import { createMcpServer } from '../mcp/server.js';

export interface McpStdioOptions {
  /**
   * How long to let the models load before answering the client (ms, default 20 s). Models still
   * loading after that appear later, announced by notifications/tools/list_changed.
   */
  startupWaitMs?: number;
}

/** Keeps stray console output (inline models, libraries) off the protocol stream. */
function consoleToStderr(): void {
  const toStderr = (...args: unknown[]): void => {
    process.stderr.write(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ') + '\n');
  };
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
  console.trace = toStderr;
}

/** Runs until the client closes stdin (or SIGINT/SIGTERM), then stops every worker and exits. */
export async function runMcpStdio(config: Config, opts: McpStdioOptions = {}): Promise<void> {
  consoleToStderr();
  const logger = pino({ level: config.log_level }, destination(2));
  const gw = new Gateway(config, logger);
  const mcp = createMcpServer(gw, { transport: 'stdio' });

  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let closing = false;
  const shutdown = (why: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ why }, 'MCP stdio server stopping');
    const force = setTimeout(() => process.exit(0), 15_000);
    force.unref();
    mcp
      .close()
      .catch(() => undefined)
      .then(() => gw.close())
      .catch((e: Error) => logger.error({ error: e.message }, 'shutdown failed'))
      .finally(finished);
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.stdin.once('end', () => shutdown('stdin closed'));
  process.stdout.on('error', () => shutdown('stdout closed'));

  logger.info({ models_dir: config.models_dir }, 'starting isomodel MCP server on stdio');
  const loading = gw.startModels().catch((e: Error) => logger.error({ error: e.message }, 'model loading failed'));
  let waitTimer: NodeJS.Timeout | undefined;
  await Promise.race([loading, new Promise<void>((r) => (waitTimer = setTimeout(r, opts.startupWaitMs ?? 20_000)))]);
  clearTimeout(waitTimer);
  if (closing) return done;
  const transport = new StdioServerTransport();
  transport.onclose = () => shutdown('transport closed');
  await mcp.connect(transport);
  logger.info({ models: gw.registry.names().map((n) => `${n}:${gw.registry.status(n)}`) }, 'MCP server ready on stdio');
  await done;
}
