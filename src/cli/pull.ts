// `isomodel pull <source> [--for <model>]`: fetches a model package into the models dir, or a
// model's weights into the weights dir, in this process (src/pull). A running gateway picks a
// new package up by itself (watch) or on reload; new weights at the model's next start.
import type { Config } from '../config/config.js';
import { discoverPackages } from '../manifest/load.js';
import { pull, pullSettings, type PullResult } from '../pull/pull.js';

export interface PullCliOpts {
  for?: string;
  force?: boolean;
  include?: string[];
}

function human(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A one-line progress bar on stderr, redrawn at most 10 times a second; nothing when stderr is not a terminal. */
function progressBar(): ((p: { file: string; received: number; total: number }) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  let lastFile = '';
  return (p) => {
    const now = Date.now();
    const finished = p.received >= p.total;
    if (p.file === lastFile && now - last < 100 && !finished) return;
    last = now;
    lastFile = p.file;
    const width = 30;
    const frac = p.total > 0 ? Math.min(1, p.received / p.total) : 1;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    const name = p.file.length > 40 ? `…${p.file.slice(-39)}` : p.file;
    process.stderr.write(
      `\r\x1b[K${name} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${human(p.received)}/${human(p.total)}`,
    );
    if (finished) process.stderr.write('\n');
  };
}

export async function pullCommand(source: string | undefined, opts: PullCliOpts, config: Config): Promise<PullResult> {
  const settings = pullSettings(config);
  if (opts.for === undefined) {
    if (!source)
      throw new Error(
        'give a source: a folder, a .tar.gz, an http(s) URL or hf:<org>/<repo>[@revision] (or --for <model> to fill its weights)',
      );
    return pull({ source, force: opts.force, include: opts.include, onProgress: progressBar() }, settings);
  }
  const pkg = discoverPackages(config.models_dir).packages.find((p) => p.manifest.name === opts.for);
  const src = source ?? pkg?.manifest.weights?.source;
  if (pkg && !src) throw new Error(`model ${opts.for} names no default weights source (weights.source): give one`);
  return pull(
    {
      source: src ?? '',
      forModel: opts.for,
      forManifest: pkg?.manifest,
      include: opts.include,
      onProgress: progressBar(),
    },
    settings,
  );
}

/** What to tell the user after a pull. */
export function pullSummary(r: PullResult): string {
  const what = r.kind === 'weights' ? `weights of ${r.model}` : `model ${r.model}${r.version ? `@${r.version}` : ''}`;
  const lines = [
    `pulled ${what}: ${r.files} files, ${human(r.bytes)} into ${r.path}${r.commit ? ` (commit ${r.commit})` : ''}`,
  ];
  if (r.resumed_bytes) lines.push(`resumed: ${human(r.resumed_bytes)} were already downloaded`);
  if (r.kind === 'weights')
    lines.push(
      `${r.model}'s workers get ${r.env}=${r.path} from their next start (a running gateway: isomodel's POST /v1/models/${r.model}/load, or restart it)`,
    );
  else lines.push('a running gateway picks it up by itself (watch) or on POST /v1/models/reload');
  return lines.join('\n');
}
