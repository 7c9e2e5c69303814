// `isomodel ls`: every model with its state and, where there is one, what is wrong or what to do
// (why a failed model failed, which variable names the weights a model needs), and every invalid
// package with the field at fault. From a running gateway when one answers, else from the models dir.
import type { Config } from '../config/config.js';
import { callGateway, gatewayUp } from './client.js';
import { table } from './table.js';

export interface LsRow {
  name: string;
  version?: string;
  runtime?: string;
  status: string;
  tasks?: string;
  /** Why it failed, what it needs, or why the package is invalid; absent when all is well. */
  note?: string;
  path?: string;
}

interface GatewayModel {
  name: string;
  version: string;
  runtime: string;
  status: string;
  tasks: { name: string }[];
  last_error: string | null;
  weights?: { env: string; present: boolean; hint: string } | null;
  requires?: { missing: string[]; packages: string[]; hint: string } | null;
}

const NOTE_MAX = 160;

function clip(s: string): string {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > NOTE_MAX ? `${flat.slice(0, NOTE_MAX)}…` : flat;
}

function invalidRows(packages: { file: string; issues: string[] }[]): LsRow[] {
  return packages.map((p) => ({
    name:
      p.file
        .replace(/\/model\.yaml$/, '')
        .split('/')
        .pop() ?? p.file,
    status: 'invalid',
    note: p.issues.join('; '),
    path: p.file,
  }));
}

export async function listCommand(url: string, config: () => Config): Promise<{ rows: LsRow[]; text: string }> {
  let rows: LsRow[];
  if (await gatewayUp(url)) {
    const env = await callGateway<{ models: GatewayModel[]; invalid_packages: { file: string; issues: string[] }[] }>(
      url,
      '/v1/models',
    );
    if (!env.success || !env.data) throw new Error(`${env.error?.code ?? 'ERROR'}: ${env.message}`);
    rows = env.data.models.map((m) => ({
      ...m,
      tasks: m.tasks.map((t) => t.name).join(','),
      note:
        m.status === 'needs_weights' && m.weights
          ? `needs weights: set ${m.weights.env}`
          : m.status === 'needs_packages' && m.requires
            ? `needs packages: ${m.requires.packages.join(' ') || m.requires.missing.join(', ')}`
            : m.status === 'failed' && m.last_error
              ? m.last_error
              : undefined,
    }));
    rows.push(...invalidRows(env.data.invalid_packages ?? []));
  } else {
    const cfg = config();
    const [{ discoverPackages }, { weightsOf }] = await Promise.all([
      import('../manifest/load.js'),
      import('../manifest/weights.js'),
    ]);
    const found = discoverPackages(cfg.models_dir);
    rows = found.packages.map((p) => {
      const w = weightsOf(p.manifest, cfg.model_env[p.manifest.name]);
      return {
        name: p.manifest.name,
        version: p.manifest.version,
        runtime: p.manifest.runtime,
        status: 'not running',
        tasks: p.manifest.tasks.map((t) => t.name).join(','),
        description: p.manifest.description,
        note: w && !w.present ? `needs weights: set ${w.env} (${w.path ?? 'unset'} is empty or missing)` : undefined,
      };
    });
    rows.push(...invalidRows(found.errors));
  }
  const text = table(
    rows.map((r) => ({ ...r, note: r.note ? clip(r.note) : '' })),
    ['name', 'version', 'runtime', 'status', 'tasks', 'note'],
  );
  return { rows, text };
}
