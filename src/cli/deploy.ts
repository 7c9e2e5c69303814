// `isomodel deploy k8s`: renders Kubernetes objects for models and the gateway (src/k8s/render.ts),
// prints them or writes a kustomize folder, and with --apply / --delete talks to the cluster of
// the kubeconfig through src/k8s/driver.ts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import type { Config } from '../config/config.js';
import { discoverPackages, type ModelPackage } from '../manifest/load.js';
import { PACKAGE_ROOT } from '../paths.js';
import {
  DEFAULT_APP_DIR,
  DEFAULT_NAMESPACE,
  renderGateway,
  renderModel,
  toYaml,
  type Rendered,
  type RenderOptions,
} from '../k8s/render.js';

export interface Selection {
  models: string[];
  all?: boolean;
  gateway?: boolean;
}

const byVersion = new Intl.Collator('en', { numeric: true }).compare;

/** One package per model name: the newest version when the models dir holds several. */
function newestPackages(modelsDir: string): { packages: Map<string, ModelPackage>; errors: string[] } {
  const found = discoverPackages(modelsDir);
  const packages = new Map<string, ModelPackage>();
  for (const p of found.packages) {
    const seen = packages.get(p.manifest.name);
    if (!seen || byVersion(p.manifest.version, seen.manifest.version) > 0) packages.set(p.manifest.name, p);
  }
  return { packages, errors: found.errors.map((e) => e.message) };
}

export function packageVersion(): string {
  return (
    (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0'
  );
}

/** Renders what the selection names, gateway first; unknown model names are an error. */
export function renderSelection(
  config: Config,
  sel: Selection,
  opts: RenderOptions,
): { rendered: Rendered[]; invalid: string[] } {
  const { packages, errors } = newestPackages(config.models_dir);
  const names = sel.all ? [...packages.keys()].sort() : sel.models;
  if (names.length === 0 && !sel.gateway) throw new Error('name one or more models, or use --all or --gateway');
  const missing = names.filter((n) => !packages.has(n));
  if (missing.length)
    throw new Error(
      `no model ${missing.map((n) => `"${n}"`).join(', ')} in ${config.models_dir} (isomodel ls lists them)`,
    );
  const options: RenderOptions = { ...opts, gatewayVersion: opts.gatewayVersion ?? packageVersion(), config };
  const rendered: Rendered[] = [];
  if (sel.gateway)
    rendered.push(
      renderGateway(
        [...packages.values()].map((p) => p.manifest),
        options,
      ),
    );
  for (const n of names) rendered.push(renderModel(packages.get(n)!.manifest, options));
  return { rendered, invalid: errors };
}

const HEADER =
  'Rendered by `isomodel deploy k8s` (docs/kubernetes.md): change the model.yaml or the config and render again.';

/** <dir>/<name>.yaml per unit, namespace.yaml, and a kustomization.yaml listing them. */
export function writeBundle(dir: string, rendered: Rendered[], namespace: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = ['namespace.yaml', ...rendered.map((r) => `${r.name}.yaml`)];
  const ns = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: namespace, labels: { 'app.kubernetes.io/managed-by': 'isomodel' } },
  };
  writeFileSync(join(dir, 'namespace.yaml'), `# ${HEADER}\n${stringify(ns)}`);
  for (const r of rendered) writeFileSync(join(dir, `${r.name}.yaml`), toYaml(r.objects, HEADER));
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `# ${HEADER}\n${stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: files })}`,
  );
  return [...files, 'kustomization.yaml'].map((f) => join(dir, f));
}

interface K8sCliOpts {
  all?: boolean;
  gateway?: boolean;
  namespace: string;
  imageRegistry?: string;
  gatewayVersion?: string;
  appDir: string;
  startupTimeout: string;
  networkPolicy: boolean;
  allowEgress?: boolean;
  out?: string;
  apply?: boolean;
  watch?: boolean;
  delete?: boolean;
  timeout: string;
  kubeconfig?: string;
  context?: string;
  replicas?: string;
  databaseUrlSecret?: string;
}

function wholeAtLeastOne(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} takes a whole number of at least 1 (got "${text}")`);
  return n;
}

function positive(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} takes a positive number of seconds (got "${text}")`);
  return n;
}

async function runK8s(names: string[], o: K8sCliOpts, config: Config): Promise<void> {
  if (o.apply && o.delete) throw new Error('--apply and --delete exclude each other');
  if (o.watch && !o.apply) throw new Error('--watch follows an --apply');
  if ((o.replicas !== undefined || o.databaseUrlSecret !== undefined) && !o.gateway)
    throw new Error('--replicas and --database-url-secret apply to the gateway: add --gateway');
  const { rendered, invalid } = renderSelection(
    config,
    { models: names, all: o.all, gateway: o.gateway },
    {
      namespace: o.namespace,
      imageRegistry: o.imageRegistry,
      gatewayVersion: o.gatewayVersion,
      appDir: o.appDir,
      startupTimeoutS: positive(o.startupTimeout, '--startup-timeout'),
      networkPolicy: o.networkPolicy,
      allowEgress: o.allowEgress,
      gatewayReplicas: o.replicas === undefined ? undefined : wholeAtLeastOne(o.replicas, '--replicas'),
      databaseUrlSecret: o.databaseUrlSecret,
    },
  );
  for (const e of invalid) process.stderr.write(`invalid package (skipped): ${e}\n`);
  for (const note of new Set(rendered.flatMap((r) => r.notes))) process.stderr.write(`note: ${note}\n`);
  if (o.out) for (const f of writeBundle(o.out, rendered, o.namespace)) process.stdout.write(`wrote ${f}\n`);
  else if (!o.apply && !o.delete)
    process.stdout.write(
      toYaml(
        rendered.flatMap((r) => r.objects),
        HEADER,
      ),
    );
  if (!o.apply && !o.delete) return;

  // Loaded only here: @kubernetes/client-node takes a second to import, which no other command should pay.
  const { KubernetesDriver } = await import('../k8s/driver.js');
  const driver = KubernetesDriver.fromKubeconfig({ kubeconfig: o.kubeconfig, context: o.context });
  const objects = rendered.flatMap((r) => r.objects);
  if (o.delete) {
    for (const d of await driver.delete(objects)) process.stdout.write(`deleted ${d}\n`);
    return;
  }
  if (await driver.ensureNamespace(o.namespace)) process.stdout.write(`created namespace ${o.namespace}\n`);
  for (const a of await driver.apply(objects)) process.stdout.write(`applied ${a.kind}/${a.name}\n`);
  if (!o.watch) return;
  const timeoutMs = positive(o.timeout, '--timeout') * 1000;
  const deployments = objects.filter((x) => x.kind === 'Deployment').map((x) => x.metadata!.name!);
  await Promise.all(
    deployments.map(async (name) => {
      await driver.waitForRollout(o.namespace, name, {
        timeoutMs,
        onProgress: (m) => process.stderr.write(`deployment/${name}: ${m}\n`),
      });
      process.stdout.write(`deployment/${name} is available\n`);
    }),
  );
}

export function deployCommand(config: () => Config): Command {
  const deploy = new Command('deploy').description('deploy models to an orchestrator');
  deploy
    .command('k8s')
    .description(
      'render Kubernetes manifests for models (Deployment, Service, HPA, NetworkPolicy) and the gateway; print, write, apply or delete them',
    )
    .argument('[models...]', 'model names from the models dir')
    .option('--all', 'every model in the models dir')
    .option('--gateway', 'the gateway too: one pod serving every model of its image')
    .option('-n, --namespace <ns>', 'namespace', DEFAULT_NAMESPACE)
    .option('--image-registry <prefix>', 'prefix for the images, e.g. registry.example.com/team')
    .option('--gateway-version <tag>', 'tag of isomodel/gateway (default: this isomodel version)')
    .option('--app-dir <dir>', 'where the gateway image keeps isomodel', DEFAULT_APP_DIR)
    .option('--startup-timeout <s>', 'startup probe budget in seconds (model loading)', '600')
    .option('--no-network-policy', 'render no NetworkPolicy')
    .option('--allow-egress', 'let model pods open outbound connections (package indexes, webhooks)')
    .option('-o, --out <dir>', 'write <name>.yaml files, namespace.yaml and a kustomization.yaml there')
    .option('--apply', 'server-side apply to the cluster of the kubeconfig (creates the namespace if missing)')
    .option('--watch', 'with --apply: wait until every Deployment is available')
    .option('--delete', 'delete the rendered objects from the cluster')
    .option('--timeout <s>', 'rollout timeout for --watch, in seconds', '600')
    .option('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--replicas <n>', 'with --gateway: gateway pods; above 1 needs --database-url-secret (docs/scale-out.md)')
    .option(
      '--database-url-secret <name>',
      `with --gateway: a Secret whose "database_url" key is the postgres:// URL the gateway pods share`,
    )
    .action((names: string[], opts: K8sCliOpts) => runK8s(names, opts, config()));
  return deploy;
}
