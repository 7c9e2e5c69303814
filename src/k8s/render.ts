// Kubernetes objects for the gateway and for each model (docs/kubernetes.md): pure functions of
// manifests and configuration, no cluster needed. A model pod runs the gateway image on a models
// dir that holds only that model: an init container copies the package out of the model's own
// image (isomodel/<model>:<version>, deploy/docker), so the pod serves the native API and the
// health routes the probes use, with the model's worker as a child process (process isolation).
// The objects every pod has are built by pod.ts, its config file by pod-config.ts.
import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1ResourceRequirements } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Config } from '../config/config.js';
import { imageTag } from '../drivers/docker-image.js';
import type { Manifest } from '../manifest/schema.js';
import { podConfig } from './pod-config.js';
import {
  containerSecurity,
  GATEWAY_MEMORY_MB,
  labels,
  MODELS_MOUNT,
  networkPolicy,
  podObjects,
  type K8sObject,
} from './pod.js';

export { HTTP_PORT, labelValue, type K8sObject } from './pod.js';
export { PLACEHOLDER_KEY } from './pod-config.js';

export interface RenderOptions {
  /** Default "isomodel". */
  namespace?: string;
  /** Prefix for every image, e.g. "registry.example.com/team" (default: none, the local names). */
  imageRegistry?: string;
  /** Tag of isomodel/gateway (default: this package's version). */
  gatewayVersion?: string;
  /** Where the gateway image keeps isomodel: bin/isomodel.js and models/ under it. */
  appDir?: string;
  /** Budget of the startup probe: model loading (and environment builds) must finish within it. */
  startupTimeoutS?: number;
  /** Render a NetworkPolicy that opens only the API port (default true). */
  networkPolicy?: boolean;
  /** Model pods may open outbound connections (package indexes, webhooks); default: none. */
  allowEgress?: boolean;
  /** The operator's configuration: auth keys, rate limits, log level, model_env, monitor, … */
  config?: Config;
  /** Gateway pods (default 1). More than one needs databaseUrlSecret: they share state through PostgreSQL. */
  gatewayReplicas?: number;
  /** A Secret whose `database_url` key holds the postgres:// URL every gateway pod shares (docs/scale-out.md). */
  databaseUrlSecret?: string;
}

/** The key of the database Secret that holds the URL. */
export const DATABASE_URL_SECRET_KEY = 'database_url';

export interface Rendered {
  /** File stem: the model's name, or "gateway". */
  name: string;
  objects: K8sObject[];
  /** What the operator should know (placeholder key, isolation that cannot work in a pod). */
  notes: string[];
}

export const DEFAULT_NAMESPACE = 'isomodel';
export const DEFAULT_APP_DIR = '/opt/isomodel';

/** DNS-1035 label (Services need one): isomodel-<name>, hashed when the name had to change. */
export function resourceName(model: string): string {
  const slug = model
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const base = `isomodel-${slug}`;
  // Hash whenever the slug differs, so "a.b" and "a-b" (or a model called "gateway") never collide.
  if (slug === model && base.length <= 63 && model !== 'gateway') return base;
  const hash = createHash('sha256').update(model).digest('hex').slice(0, 6);
  return `${base.slice(0, 63 - 7).replace(/-+$/, '')}-${hash}`;
}

function withRegistry(ref: string, registry?: string): string {
  return registry ? `${registry.replace(/\/+$/, '')}/${ref}` : ref;
}

export function modelImage(m: Manifest, registry?: string): string {
  return withRegistry(imageTag(m), registry);
}

export function gatewayImage(version: string, registry?: string): string {
  return withRegistry(`isomodel/gateway:${version.replace(/[^\w.-]/g, '_')}`, registry);
}

const milli = (cpus: number): string => `${Math.max(1, Math.round(cpus * 1000))}m`;
const mebi = (mb: number): string => `${Math.ceil(mb)}Mi`;

function defaults(
  o: RenderOptions,
): Required<Omit<RenderOptions, 'config' | 'imageRegistry' | 'gatewayReplicas' | 'databaseUrlSecret'>> {
  return {
    namespace: o.namespace ?? DEFAULT_NAMESPACE,
    gatewayVersion: o.gatewayVersion ?? '0.0.0',
    appDir: (o.appDir ?? DEFAULT_APP_DIR).replace(/\/+$/, ''),
    startupTimeoutS: o.startupTimeoutS ?? 600,
    networkPolicy: o.networkPolicy ?? true,
    allowEgress: o.allowEgress ?? false,
  };
}

function isolationNotes(m: Manifest): string[] {
  if (m.isolation === 'sandbox')
    return [
      `${m.name}: isolation "sandbox" needs bubblewrap and user namespaces inside the pod, which the restricted pod security context usually forbids; the pod itself isolates the model, so "process" is the usual choice on Kubernetes`,
    ];
  if (m.isolation === 'docker')
    return [
      `${m.name}: isolation "docker" needs a container engine inside the pod, which it does not have; on Kubernetes the pod is the container: use isolation "process"`,
    ];
  return [];
}

/** How the init container copies the package out of the model image, with that image's own interpreter. */
function copyCommand(m: Manifest, dest: string): string[] {
  if (m.runtime === 'python' || m.runtime === 'command')
    return [
      'python3',
      '-c',
      'import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)',
      '/model',
      dest,
    ];
  return [
    'node',
    '-e',
    "require('node:fs').cpSync(process.argv[1], process.argv[2], { recursive: true })",
    '/model',
    dest,
  ];
}

/**
 * One model: ConfigMap, Deployment, Service, HorizontalPodAutoscaler and (by default) a
 * NetworkPolicy. Pods are sized for the in-pod worker pool (min..max replicas of the manifest);
 * the HPA adds pods on CPU. HPA minReplicas cannot be 0 (alpha HPAScaleToZero), so min_replicas 0
 * keeps one pod whose workers stop after idle_timeout_s and start again on the next request.
 */
export function renderModel(m: Manifest, opts: RenderOptions = {}): Rendered {
  const o = defaults(opts);
  const notes = isolationNotes(m);
  if (!m.autoload)
    notes.push(
      `${m.name}: autoload is false, so the pod stays unready until an admin calls POST /v1/models/${m.name}/load`,
    );
  const instance = resourceName(m.name);
  const config = opts.config;
  const modelEnv = config?.model_env[m.name];
  const configText = podConfig(
    config,
    {
      default_model: m.name,
      // The pod exists to serve this model: unready until it is, even if the manifest says optional.
      required_models: [m.name],
      // The kubelet's cgroup bounds the pod; per-replica limits fall back to ulimit / V8 heap + RSS watchdog.
      cgroups: false,
      ...(modelEnv ? { model_env: { [m.name]: modelEnv } } : {}),
    },
    notes,
  );
  const initial = Math.max(1, m.scaling.min_replicas);
  const most = Math.max(initial, m.scaling.max_replicas);
  const { memory_mb, cpus, gpus } = m.resources;
  const resources: V1ResourceRequirements = {
    requests: { cpu: milli(cpus * initial + 0.1), memory: mebi(memory_mb * initial + GATEWAY_MEMORY_MB) },
    limits: {
      cpu: milli(cpus * most + 0.5),
      memory: mebi(memory_mb * most + GATEWAY_MEMORY_MB),
      // Extended resources go in limits (requests default to them); the pod's workers share the GPUs.
      ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}),
    },
  };
  const packageDir = `${MODELS_MOUNT}/${m.name}`;
  const init: V1Container = {
    name: 'model',
    image: modelImage(m, opts.imageRegistry),
    imagePullPolicy: 'IfNotPresent',
    command: copyCommand(m, packageDir),
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
    securityContext: containerSecurity,
    volumeMounts: [{ name: 'models', mountPath: MODELS_MOUNT }],
  };
  const objects: K8sObject[] = [
    ...podObjects(
      {
        instance,
        component: 'model',
        version: m.version,
        configText,
        modelsDir: MODELS_MOUNT,
        args: ['serve'],
        resources,
        gpus,
        initContainers: [init],
        extraVolumes: [{ name: 'models', emptyDir: { sizeLimit: '4Gi' } }],
        extraMounts: [{ name: 'models', mountPath: MODELS_MOUNT, readOnly: true }],
        image: gatewayImage(o.gatewayVersion, opts.imageRegistry),
      },
      o,
      // Left to the HPA: re-applying must not reset the replica count it chose.
      undefined,
    ),
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: instance, namespace: o.namespace, labels: labels(instance, 'model', m.version) },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: instance },
        minReplicas: initial,
        maxReplicas: most,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        ],
        // idle_timeout_s is how long the model waits before giving capacity back; HPA caps it at an hour.
        behavior: {
          scaleDown: {
            stabilizationWindowSeconds:
              m.scaling.idle_timeout_s > 0 ? Math.min(3600, Math.round(m.scaling.idle_timeout_s)) : 300,
          },
        },
      },
    },
  ];
  if (o.networkPolicy) objects.push(networkPolicy(instance, 'model', m.version, o.namespace, !o.allowEgress));
  return { name: m.name, objects, notes };
}

/**
 * The gateway: pods serving every model of their image (the models dir of `isomodel serve`),
 * each in its own worker processes. ConfigMap, Deployment, Service, NetworkPolicy (ingress only).
 * One replica keeps jobs, keys created at run time and the request log in its pod's SQLite;
 * several (`gatewayReplicas`) share keys, audit, traffic splits and jobs through the PostgreSQL
 * database whose URL the `databaseUrlSecret` Secret holds, and keep only their request log local.
 */
export function renderGateway(models: Manifest[], opts: RenderOptions = {}): Rendered {
  const o = defaults(opts);
  const replicas = opts.gatewayReplicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1)
    throw new Error(`gateway replicas must be a whole number of at least 1 (got ${replicas})`);
  const secret = opts.databaseUrlSecret;
  if (secret !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(secret))
    throw new Error(`"${secret}" is not a valid Secret name (lowercase letters, digits, "-" and ".")`);
  if (replicas > 1 && !secret) {
    throw new Error(
      'several gateway replicas share their state through PostgreSQL: name the Secret holding its URL with --database-url-secret (docs/scale-out.md); without it each pod would have its own keys and jobs',
    );
  }
  const notes =
    replicas > 1
      ? [
          'several gateway replicas share API keys, the audit log, traffic splits and batch jobs through PostgreSQL: any pod answers any job, and a job outlives the pod that accepted it; give every pod the same model packages (docs/scale-out.md)',
        ]
      : [];
  const extraEnv: V1EnvVar[] = secret
    ? [{ name: 'ISOMODEL_DATABASE_URL', valueFrom: { secretKeyRef: { name: secret, key: DATABASE_URL_SECRET_KEY } } }]
    : [];
  const instance = 'isomodel-gateway';
  const config = opts.config;
  notes.push(...models.flatMap(isolationNotes));
  const fixed: Record<string, unknown> = { cgroups: false };
  if (config?.default_model) fixed.default_model = config.default_model;
  if (config?.required_models) fixed.required_models = config.required_models;
  if (config && Object.keys(config.model_env).length > 0) fixed.model_env = config.model_env;
  const configText = podConfig(config, fixed, notes);
  const loaded = models.filter((m) => m.autoload);
  const sum = (list: Manifest[], f: (m: Manifest) => number): number => list.reduce((n, m) => n + f(m), 0);
  const gpus = loaded.reduce((n, m) => Math.max(n, m.resources.gpus), 0);
  const resources: V1ResourceRequirements = {
    // Requests: the required models' first workers (idle ones use no CPU). Optional models
    // (weights that may not be mounted: lucaone asks for 16 GiB) count only in the limits.
    requests: {
      cpu: '250m',
      memory: mebi(
        GATEWAY_MEMORY_MB +
          sum(
            loaded.filter((m) => m.required),
            (m) => m.resources.memory_mb * Math.max(1, m.scaling.min_replicas),
          ),
      ),
    },
    limits: {
      cpu: milli(0.5 + sum(loaded, (m) => m.resources.cpus * Math.max(1, m.scaling.max_replicas))),
      memory: mebi(GATEWAY_MEMORY_MB + sum(loaded, (m) => m.resources.memory_mb * Math.max(1, m.scaling.max_replicas))),
      ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}),
    },
  };
  const objects: K8sObject[] = [
    ...podObjects(
      {
        instance,
        component: 'gateway',
        version: o.gatewayVersion,
        configText,
        modelsDir: `${o.appDir}/models`,
        args: ['serve'],
        resources,
        gpus,
        extraEnv,
        image: gatewayImage(o.gatewayVersion, opts.imageRegistry),
      },
      o,
      replicas,
    ),
  ];
  // Egress stays open: webhooks and package indexes are the gateway's to reach.
  if (o.networkPolicy) objects.push(networkPolicy(instance, 'gateway', o.gatewayVersion, o.namespace, false));
  return { name: 'gateway', objects, notes };
}

/** Multi-document YAML, in apply order. */
export function toYaml(objects: K8sObject[], header?: string): string {
  // No anchors/aliases for objects used twice (the security context): plain YAML for every tool.
  const docs = objects.map((obj) => stringify(obj, { lineWidth: 0, aliasDuplicateObjects: false }));
  return (header ? `${header.replace(/^/gm, '# ')}\n` : '') + docs.join('---\n');
}
