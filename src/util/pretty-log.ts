// Log lines a person can read on a terminal: pino writes JSON lines into this destination, which
// prints "12:01:02 INFO  message  key=value …". Anywhere else (a pipe, a file, a log collector)
// the gateway keeps writing JSON: `log_format` in the config, auto by default (cli/index.ts).

/** pino's numeric levels. */
const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '\u001b[90m' },
  20: { name: 'DEBUG', color: '\u001b[36m' },
  30: { name: 'INFO', color: '\u001b[32m' },
  40: { name: 'WARN', color: '\u001b[33m' },
  50: { name: 'ERROR', color: '\u001b[31m' },
  60: { name: 'FATAL', color: '\u001b[35m' },
};
const RESET = '\u001b[0m';
const DIM = '\u001b[2m';
/** pino's own fields, shown in the line's head or left out. */
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'component', 'worker_log', 'model', 'replica']);
/** Longest value shown per field: a prettier line, not a smaller log (JSON keeps everything). */
const MAX_VALUE_CHARS = 300;

export interface PrettyOptions {
  color: boolean;
}

/** One JSON log line as a readable line (the input unchanged when it is not JSON). */
export function prettyLine(json: string, opts: PrettyOptions): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  if (typeof o !== 'object' || o === null) return `${json.trimEnd()}\n`;
  const level = LEVELS[Number(o.level)] ?? { name: String(o.level ?? '?').toUpperCase(), color: '' };
  const time = typeof o.time === 'number' ? new Date(o.time).toTimeString().slice(0, 8) : '';
  const paint = (code: string, text: string): string => (opts.color && code ? `${code}${text}${RESET}` : text);
  // Where it comes from: a model (and its replica), or a gateway component.
  const where =
    o.model !== undefined
      ? `${String(o.model)}${o.replica !== undefined ? ` ${String(o.replica)}` : ''}`
      : o.component !== undefined
        ? String(o.component)
        : '';
  const msg = typeof o.worker_log === 'string' ? o.worker_log : String(o.msg ?? '');
  const fields = Object.entries(o)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${clip(typeof v === 'string' ? v : JSON.stringify(v))}`);
  const head = `${paint(DIM, time)} ${paint(level.color, level.name.padEnd(5))}${where ? ` ${paint(DIM, `[${where}]`)}` : ''}`;
  return `${head} ${msg}${fields.length ? `  ${paint(DIM, fields.join(' '))}` : ''}\n`;
}

function clip(v: string): string {
  const flat = v.replace(/\s+/g, ' ');
  return flat.length > MAX_VALUE_CHARS ? `${flat.slice(0, MAX_VALUE_CHARS)}…` : flat;
}

/** A pino destination that writes pretty lines to `out` (synchronously, in order). */
export function prettyDestination(
  out: { write(s: string): unknown },
  opts: PrettyOptions,
): { write(line: string): void } {
  return {
    write(line: string): void {
      out.write(prettyLine(line, opts));
    },
  };
}
