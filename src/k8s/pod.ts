// The Kubernetes objects of one isomodel pod (docs/kubernetes.md): its Deployment, the ConfigMap
// holding its config file, its Service and NetworkPolicy, with the labels and selectors they
// share. What goes into a model's or the gateway's pod is render.ts's.
import { createHash } from 'node:crypto';
import type {
  V1EnvVar,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1NetworkPolicy,
  V1PodSpec,
  V1Probe,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Service,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';

export type K8sObject = V1ConfigMap | V1Deployment | V1Service | V2HorizontalPodAutoscaler | V1NetworkPolicy;

export const HTTP_PORT = 8000;
const CONFIG_DIR = '/etc/isomodel';
export const CONFIG_FILE = 'isomodel.config.yaml';
const STATE_DIR = '/var/lib/isomodel';
export const MODELS_MOUNT = '/models';
/** The user the images run as (deploy/docker: USER 65534:65534). */
const RUN_AS = 65534;
/** The gateway process itself, beside the workers: Fastify, queues, SQLite. */
export const GATEWAY_MEMORY_MB = 256;
const LABEL_PREFIX = 'app.kubernetes.io';

export function labels(instance: string, component: 'model' | 'gateway', version: string): Record<string, string> {
  return {
    [`${LABEL_PREFIX}/name`]: 'isomodel',
    [`${LABEL_PREFIX}/instance`]: instance,
    [`${LABEL_PREFIX}/component`]: component,
    [`${LABEL_PREFIX}/part-of`]: 'isomodel',
    [`${LABEL_PREFIX}/version`]: labelValue(version),
    [`${LABEL_PREFIX}/managed-by`]: 'isomodel',
  };
}

/** Selectors leave out the version: a Deployment's selector cannot change after creation. */
function selector(instance: string): Record<string, string> {
  return { [`${LABEL_PREFIX}/name`]: 'isomodel', [`${LABEL_PREFIX}/instance`]: instance };
}

/** A label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends ("1.0.0+build" → "1.0.0_build"). */
export function labelValue(v: string): string {
  return v
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** What every pod of a rendering shares (render.ts fills it from RenderOptions). */
export interface PodSettings {
  namespace: string;
  /** Where the gateway image keeps isomodel. */
  appDir: string;
  /** Budget of the startup probe. */
  startupTimeoutS: number;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export const containerSecurity: V1SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};

function probe(path: string, periodSeconds: number, failureThreshold: number): V1Probe {
  return { httpGet: { path, port: 'http' }, periodSeconds, timeoutSeconds: 3, failureThreshold };
}

export interface PodParts {
  instance: string;
  component: 'model' | 'gateway';
  version: string;
  configText: string;
  /** Where isomodel serve finds its models inside the pod. */
  modelsDir: string;
  args: string[];
  resources: V1ResourceRequirements;
  gpus: number;
  initContainers?: V1Container[];
  extraVolumes?: V1Volume[];
  extraMounts?: V1VolumeMount[];
  extraEnv?: V1EnvVar[];
  image: string;
}

function deployment(p: PodParts, o: PodSettings, replicas: number | undefined): V1Deployment {
  const mounts: V1VolumeMount[] = [
    { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
    { name: 'state', mountPath: STATE_DIR },
    // The work dir (config work_dir, default <state_dir>-work): scratch dirs and per-model envs.
    { name: 'work', mountPath: `${STATE_DIR}-work` },
    { name: 'tmp', mountPath: '/tmp' },
    ...(p.extraMounts ?? []),
  ];
  const main: V1Container = {
    name: 'isomodel',
    image: p.image,
    imagePullPolicy: 'IfNotPresent',
    command: ['node', `${o.appDir}/bin/isomodel.js`],
    args: p.args,
    // The environment outranks the config file, and the gateway image sets loopback and its own
    // models dir there (deploy/docker/gateway.Dockerfile): the pod's values must be set here too.
    env: [
      { name: 'ISOMODEL_CONFIG', value: `${CONFIG_DIR}/${CONFIG_FILE}` },
      { name: 'ISOMODEL_HOST', value: '0.0.0.0' },
      { name: 'ISOMODEL_PORT', value: String(HTTP_PORT) },
      { name: 'ISOMODEL_MODELS_DIR', value: p.modelsDir },
      { name: 'ISOMODEL_STATE_DIR', value: STATE_DIR },
      { name: 'ISOMODEL_WATCH', value: 'false' },
      { name: 'HOME', value: '/tmp' },
      { name: 'TMPDIR', value: '/tmp' },
      { name: 'PYTHONDONTWRITEBYTECODE', value: '1' },
      ...(p.extraEnv ?? []),
    ],
    ports: [{ name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' }],
    resources: p.resources,
    // startup: initial loads attempted; ready: every required model ready, no dead replica.
    startupProbe: probe('/health/startup', 5, Math.max(1, Math.ceil(o.startupTimeoutS / 5))),
    livenessProbe: probe('/health/live', 10, 3),
    readinessProbe: probe('/health/ready', 5, 2),
    securityContext: containerSecurity,
    volumeMounts: mounts,
  };
  const tolerations: V1Toleration[] =
    p.gpus > 0 ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : [];
  const pod: V1PodSpec = {
    // No API access needed; no Service environment variables (ISOMODEL_PORT=tcp://… would be read as the port).
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      fsGroup: RUN_AS,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // SIGTERM drains: in-flight batches finish before the workers stop.
    terminationGracePeriodSeconds: 45,
    ...(p.initContainers ? { initContainers: p.initContainers } : {}),
    containers: [main],
    ...(tolerations.length ? { tolerations } : {}),
    volumes: [
      { name: 'config', configMap: { name: `${p.instance}-config` } },
      { name: 'state', emptyDir: { sizeLimit: '2Gi' } },
      { name: 'work', emptyDir: { sizeLimit: '2Gi' } },
      { name: 'tmp', emptyDir: { sizeLimit: '1Gi' } },
      ...(p.extraVolumes ?? []),
    ],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: p.instance, namespace: o.namespace, labels: labels(p.instance, p.component, p.version) },
    spec: {
      ...(replicas !== undefined ? { replicas } : {}),
      revisionHistoryLimit: 5,
      progressDeadlineSeconds: Math.max(600, o.startupTimeoutS + 60),
      selector: { matchLabels: selector(p.instance) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: labels(p.instance, p.component, p.version),
          annotations: {
            // A config change alone rolls the pods.
            'isomodel.dev/config-sha256': sha256(p.configText),
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(HTTP_PORT),
            'prometheus.io/path': '/metrics/prometheus',
          },
        },
        spec: pod,
      },
    },
  };
}

function configMap(
  instance: string,
  component: 'model' | 'gateway',
  version: string,
  namespace: string,
  text: string,
): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${instance}-config`, namespace, labels: labels(instance, component, version) },
    data: { [CONFIG_FILE]: text },
  };
}

function service(instance: string, component: 'model' | 'gateway', version: string, namespace: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: instance, namespace, labels: labels(instance, component, version) },
    spec: {
      type: 'ClusterIP',
      selector: selector(instance),
      ports: [{ name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function networkPolicy(
  instance: string,
  component: 'model' | 'gateway',
  version: string,
  namespace: string,
  denyEgress: boolean,
): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: instance, namespace, labels: labels(instance, component, version) },
    spec: {
      podSelector: { matchLabels: selector(instance) },
      policyTypes: denyEgress ? ['Ingress', 'Egress'] : ['Ingress'],
      // Only the API port is reachable (kubelet probes are not subject to NetworkPolicy).
      ingress: [{ ports: [{ protocol: 'TCP', port: 'http' }] }],
      ...(denyEgress ? { egress: [] } : {}),
    },
  };
}

/** A pod's ConfigMap (its config file), Service and Deployment; replicas undefined: left to an HPA. */
export function podObjects(p: PodParts, o: PodSettings, replicas: number | undefined): K8sObject[] {
  return [
    configMap(p.instance, p.component, p.version, o.namespace, p.configText),
    service(p.instance, p.component, p.version, o.namespace),
    deployment(p, o, replicas),
  ];
}
