// The create request and environment of one replica's container (isolation docker): no network,
// the manifest's memory/CPU limits, a read-only root, no capabilities, an unprivileged user, the
// protocol on attached stdin/stdout. Pure functions: drivers/docker.ts sends them to the engine.
import type Docker from 'dockerode';
import type { ModelPackage } from '../manifest/load.js';
import { PROTOCOL_VERSION } from '../worker/protocol.js';
import { containerCommand, IMAGE_MODEL_DIR, inImage } from './docker-image.js';
import { httpAdapterConfig, httpAdapterMemoryMb } from './http.js';

/** The uid/gid models run as inside their container (nobody). */
const CONTAINER_USER = '65534:65534';
const MB = 1024 * 1024;

export interface ContainerSpecInput {
  pkg: ModelPackage;
  replicaId: string;
  /** The image id (drivers/docker-image.ts ensureModelImage). */
  image: string;
  env: Record<string, string>;
  /** The engine host's CPU count (the CPU limit is capped there). */
  hostCpus: number;
  /** Host paths mounted read-only at the same path (the weights folder the operator set). */
  readOnlyMounts?: string[];
}

/** The create request for one replica's container. */
export function containerSpec(o: ContainerSpecInput): Docker.ContainerCreateOptions {
  const m = o.pkg.manifest;
  // The engine refuses less than 6 MB; swap equal to memory means no swap at all.
  const memory = Math.max(6, m.resources.memory_mb) * MB;
  const cpus = Math.min(m.resources.cpus, o.hostCpus);
  return {
    name: `isomodel-${m.name}-${o.replicaId}-${Math.random().toString(36).slice(2, 8)}`,
    Image: o.image,
    Cmd: containerCommand(m),
    Env: Object.entries(o.env).map(([k, v]) => `${k}=${v}`),
    User: CONTAINER_USER,
    WorkingDir: '/tmp',
    Labels: { 'isomodel.model': m.name, 'isomodel.version': m.version, 'isomodel.replica': o.replicaId },
    // The protocol channel: stdin stays open while attached; when the gateway's attach
    // connection closes (stop, or the gateway dies) the worker reads end-of-input and exits.
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    HostConfig: {
      NetworkMode: 'none',
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(cpus * 1e9),
      PidsLimit: 512,
      ReadonlyRootfs: true,
      // The only writable path (HOME, TMPDIR, cwd); tmpfs pages count against the memory limit.
      Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${Math.max(6, m.resources.memory_mb)}m` },
      ...(o.readOnlyMounts?.length
        ? { Mounts: o.readOnlyMounts.map((p) => ({ Type: 'bind' as const, Source: p, Target: p, ReadOnly: true })) }
        : {}),
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      IpcMode: 'private',
      // tini as PID 1 reaps whatever a model forks; SIGKILL to the container still ends everything.
      Init: true,
      // Bounded: the log also holds the protocol traffic (stdout), removed with the container.
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}

/** runtime http: the adapter's own container needs little (node, one process); the server gets the manifest's limits. */
const HTTP_ADAPTER_CPUS = 0.5;

/**
 * runtime http, isolation docker: the adapter's container joins the server container's network
 * namespace (`container:<id>`: the server's loopback, and still no other interface) and gets
 * its own small limits. Everything else is the model container's spec.
 */
export function httpAdapterSpec(o: ContainerSpecInput & { serverId: string }): Docker.ContainerCreateOptions {
  const pkg = {
    ...o.pkg,
    manifest: {
      ...o.pkg.manifest,
      resources: {
        ...o.pkg.manifest.resources,
        memory_mb: httpAdapterMemoryMb(o.pkg.manifest),
        cpus: Math.min(HTTP_ADAPTER_CPUS, o.pkg.manifest.resources.cpus),
      },
    },
  };
  const spec = containerSpec({ ...o, pkg });
  spec.HostConfig!.NetworkMode = `container:${o.serverId}`;
  spec.Labels = { ...spec.Labels, 'isomodel.role': 'http-adapter' };
  return spec;
}

/**
 * runtime http, isolation docker: the model's own server, from http.image as it is (its command,
 * its working dir), with NetworkMode none (only its loopback, where the adapter reaches it), the
 * manifest's limits, a read-only root with /tmp the only writable path, no capabilities, and the
 * unprivileged user. PORT says where to listen. Its output is read on an attach stream.
 */
export function httpServerSpec(o: ContainerSpecInput): Docker.ContainerCreateOptions {
  const m = o.pkg.manifest;
  const base = containerSpec(o);
  const env = { ...o.env, PORT: String(m.http!.port) };
  return {
    name: base.name!.replace(/^isomodel-/, 'isomodel-server-'),
    Image: o.image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    User: CONTAINER_USER,
    Labels: { ...base.Labels, 'isomodel.role': 'http-server' },
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: false,
    Tty: false,
    HostConfig: base.HostConfig,
  };
}

/** What every process in a container starts with: a writable home and temp dir, Python unbuffered and without .pyc files. */
const CONTAINER_BASE_ENV: Record<string, string> = {
  HOME: '/tmp',
  TMPDIR: '/tmp',
  PYTHONUNBUFFERED: '1',
  PYTHONDONTWRITEBYTECODE: '1',
};

/** The server's environment (runtime http, docker): the manifest's and the operator's, over a minimal base; no isomodel internals. */
export function httpServerEnv(
  pkg: ModelPackage,
  replicaId: string,
  extraEnv: Record<string, string> = {},
): Record<string, string> {
  const m = pkg.manifest;
  return {
    ...CONTAINER_BASE_ENV,
    ISOMODEL_MODEL_NAME: m.name,
    ISOMODEL_MODEL_VERSION: m.version,
    ISOMODEL_REPLICA_ID: replicaId,
    ...m.env,
    ...extraEnv,
  };
}

/** The replica's environment inside the container: paths are the image's, never the host's. */
export function containerEnv(
  pkg: ModelPackage,
  replicaId: string,
  extraEnv: Record<string, string> = {},
): Record<string, string> {
  const m = pkg.manifest;
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    ...CONTAINER_BASE_ENV,
    ISOMODEL_PROTOCOL: String(PROTOCOL_VERSION),
    ISOMODEL_MODEL_NAME: m.name,
    ISOMODEL_MODEL_VERSION: m.version,
    ISOMODEL_MODEL_DIR: IMAGE_MODEL_DIR,
    ISOMODEL_DATA_DIR: inImage(m.data_dir),
    ISOMODEL_ENTRY: Array.isArray(m.entry) ? containerCommand(m).join(' ') : inImage(m.entry),
    ISOMODEL_REPLICA_ID: replicaId,
    ISOMODEL_CPUS: String(m.resources.cpus),
  };
  // Last: the adapter's settings are the manifest's, not overridable by env.
  return {
    ...env,
    ...m.env,
    ...extraEnv,
    ...(m.runtime === 'http' && { ISOMODEL_HTTP: JSON.stringify(httpAdapterConfig(m, IMAGE_MODEL_DIR, false)) }),
  };
}
