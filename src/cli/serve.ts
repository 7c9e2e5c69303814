// `isomodel serve`: the gateway in the foreground. On a terminal the log is readable lines and,
// once every model has settled, a table says what serves where; elsewhere JSON lines, the last
// of them the same summary.
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';
import { Gateway } from '../gateway.js';
import { STATE_DB_FILE, StateStore } from '../store/db.js';
import { prettyDestination } from '../util/pretty-log.js';
import { table } from './table.js';

/** Readable lines when the config says so, or on a terminal when it says auto. */
export function wantsPretty(config: Config, isTTY = Boolean(process.stdout.isTTY)): boolean {
  return config.log_format === 'pretty' || (config.log_format === 'auto' && isTTY);
}

export function serveLogger(config: Config): Logger | undefined {
  if (!wantsPretty(config)) return undefined; // the gateway's default: JSON lines on stdout
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  return pino({ level: config.log_level }, prettyDestination(process.stdout, { color }));
}

export interface ModelRow {
  model: string;
  runtime: string;
  state: string;
  replicas: string;
  url: string;
  /** What to do (needs_weights, needs_packages) or what went wrong (failed); '' otherwise. */
  note: string;
}

/** One row per model: what `serve` prints once the start-up loads have settled. */
export function startupRows(gw: Gateway, url: string): ModelRow[] {
  const def = gw.defaultModel();
  return gw.registry.names().map((name) => {
    const m = gw.registry.package(name).manifest;
    const status = gw.registry.status(name);
    const reps = gw.registry.deployment(name)?.replicaInfo() ?? [];
    const weights = status === 'needs_weights' ? gw.registry.weights(name) : null;
    const packages = status === 'needs_packages' ? gw.registry.requirements(name) : null;
    const note = weights
      ? weights.hint
      : packages
        ? packages.hint
        : status === 'failed'
          ? (gw.registry.lastError(name) ?? '')
          : '';
    return {
      model: name,
      runtime: m.runtime,
      state: status,
      replicas: `${reps.filter((r) => r.state === 'ready').length}/${reps.length}`,
      url: `${url}/models/${name}${name === def ? `  (and ${url}/)` : ''}`,
      note,
    };
  });
}

export function startupSummary(gw: Gateway, url: string): string {
  const rows = startupRows(gw, url);
  const lines = [table(rows as unknown as Record<string, unknown>[], ['model', 'runtime', 'state', 'replicas', 'url'])];
  for (const r of rows)
    if (r.note) lines.push(`  ${r.model} (${r.state}): ${r.note.replace(/\s+/g, ' ').slice(0, 600)}`);
  const invalid = gw.registry.invalidPackages();
  for (const p of invalid) lines.push(`  invalid package ${p.file}: ${p.issues.join('; ')}`);
  const missing = gw.missingDefaultModel();
  if (missing)
    lines.push(
      `  default_model "${missing}" is not a model here: ${url}/predict answers for ${gw.defaultModel() ?? 'no model'}`,
    );
  return `${lines.join('\n')}\n`;
}

export async function serveCommand(config: Config): Promise<void> {
  // A damaged state database found while features set up their tables: which file, what to do.
  const stateDbError = (e: unknown): unknown =>
    StateStore.openError(join(config.state_dir, STATE_DB_FILE), e, true) ?? e;
  const pretty = wantsPretty(config);
  let gw: Gateway;
  try {
    gw = new Gateway(config, serveLogger(config));
  } catch (e) {
    throw stateDbError(e);
  }
  const stop = (signal: string): void => {
    gw.logger.info({ signal }, 'shutting down');
    gw.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  let url: string;
  try {
    ({ url } = await gw.start());
  } catch (e) {
    // Nothing half-started stays behind (a listening server would keep the process alive).
    await gw.close().catch(() => undefined);
    throw stateDbError(e);
  }
  gw.logger.info(
    { url, models: gw.registry.names().map((n) => `${n}:${gw.registry.status(n)}`) },
    `isomodel listening on ${url}`,
  );
  // Optional models (weights that may be absent) settle in the background: the summary waits for them.
  await gw.registry.initialLoadsSettled();
  const rows = startupRows(gw, url);
  if (pretty) process.stdout.write(`\n${startupSummary(gw, url)}\n`);
  else
    gw.logger.info(
      { url, models: rows.map((r) => ({ model: r.model, state: r.state, replicas: r.replicas })) },
      `isomodel started: ${rows.filter((r) => r.state === 'ready').length} of ${rows.length} models ready`,
    );
}
