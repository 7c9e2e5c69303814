// A pod's isomodel.config.yaml (docs/kubernetes.md): the operator's settings that make sense in
// a pod, what the pod needs, and API keys (a placeholder that matches none when there are none).
import { stringify } from 'yaml';
import { configSchema, type Config } from '../config/config.js';

/** Matches no key: pods start and answer probes, every API call is refused until it is replaced. */
export const PLACEHOLDER_KEY = { name: 'replace-me', sha256: '0'.repeat(64), scopes: ['admin' as const] };

/** Settings that travel from the operator's config into the pods (paths on this machine do not). */
const PASS_THROUGH = [
  'log_level',
  'body_limit_bytes',
  'max_batch_sequences',
  'rate_limit',
  'python',
  'monitor',
  'worker_log',
  'inline_models',
] as const;

/** The pod's isomodel.config.yaml: only what differs from the defaults, plus what a pod needs. */
export function podConfig(config: Config | undefined, fixed: Record<string, unknown>, notes: string[]): string {
  const defaults = configSchema.parse({});
  const out: Record<string, unknown> = { ...fixed };
  for (const key of PASS_THROUGH) {
    const v = config?.[key];
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(defaults[key])) out[key] = v;
  }
  if (config && config.envs.index_url) out.envs = { index_url: config.envs.index_url };
  // A pod listens on its pod IP, which isomodel refuses without API keys (src/gateway.ts).
  const keys = config?.auth.keys ?? [];
  out.auth = {
    keys: keys.length > 0 ? keys : [PLACEHOLDER_KEY],
    ...(config && !config.auth.public_metrics ? { public_metrics: false } : {}),
  };
  const head = ['# isomodel configuration inside the pod (rendered by `isomodel deploy k8s`, docs/kubernetes.md).'];
  if (keys.length === 0) {
    head.push('# auth.keys holds a PLACEHOLDER digest that matches no key: probes answer, every API call is refused.');
    head.push(
      '# Replace it with your key\'s SHA-256 (printf %s "$KEY" | sha256sum), or render from a config with auth.keys.',
    );
    notes.push(
      'no auth.keys in the configuration: the rendered pods carry a placeholder digest that matches no key, so every API call is refused until you replace it (docs/kubernetes.md#api-keys)',
    );
  }
  return `${head.join('\n')}\n${stringify(out, { lineWidth: 0 })}`;
}
