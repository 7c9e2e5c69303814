// `isomodel logs <model> [-f]`: a model's replica log files from a running gateway
// (GET /v1/models/{name}/logs; an admin key in ISOMODEL_API_KEY when the gateway has keys).
interface LogLine {
  replica: string;
  time: string;
  line: string;
}

export interface LogsCliOpts {
  url: string;
  replica?: string;
  tail?: string;
  follow?: boolean;
}

function headers(): Record<string, string> {
  const key = process.env.ISOMODEL_API_KEY;
  return key ? { authorization: `Bearer ${key}` } : {};
}

const show = (l: LogLine): string => `${l.time} [${l.replica}] ${l.line}\n`;

export async function logsCommand(
  model: string,
  opts: LogsCliOpts,
  out: (text: string) => void = (t) => void process.stdout.write(t),
): Promise<void> {
  const q = new URLSearchParams();
  if (opts.replica) q.set('replica', opts.replica);
  if (opts.tail) q.set('tail', opts.tail);
  if (opts.follow) q.set('follow', 'true');
  const res = await fetch(new URL(`/v1/models/${encodeURIComponent(model)}/logs?${q}`, opts.url), {
    headers: headers(),
  });
  if (!opts.follow || !res.ok || !res.body) {
    const env = (await res.json()) as { success: boolean; message: string; data?: { lines: LogLine[] } };
    if (!env.success) throw new Error(env.message);
    for (const l of env.data!.lines) out(show(l));
    return;
  }
  // NDJSON, one line per log line, until the gateway ends it (or Ctrl-C).
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const parts = (rest + decoder.decode(chunk, { stream: true })).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) if (p) out(show(JSON.parse(p) as LogLine));
  }
}
