// Applies rendered objects to a cluster and follows a Deployment's rollout, with
// @kubernetes/client-node 1.x: server-side apply (the API server merges, isomodel owns its
// fields), a watch on the Deployment until its new pods are available, and delete.
// Tested against a fake API server (test/k8s-fake-api.ts), not a live cluster: docs/kubernetes.md.
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubernetesObject,
  type V1Deployment,
} from '@kubernetes/client-node';
import type { K8sObject } from './render.js';

export const FIELD_MANAGER = 'isomodel';

export interface DriverOptions {
  /** Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account). */
  kubeconfig?: string;
  context?: string;
}

export interface Applied {
  kind: string;
  name: string;
  namespace?: string;
  generation?: number;
}

export interface RolloutState {
  done: boolean;
  /** Set when the rollout cannot finish by itself (progress deadline exceeded). */
  failed?: string;
  message: string;
}

/**
 * Where a Deployment's rollout stands, by the rules `kubectl rollout status` uses: the controller
 * has seen this generation, every replica runs the new template, old ones are gone, and the new
 * ones are available.
 */
export function rolloutState(d: V1Deployment): RolloutState {
  const generation = d.metadata?.generation ?? 0;
  const s = d.status ?? {};
  if ((s.observedGeneration ?? 0) < generation)
    return { done: false, message: `waiting for the controller to observe generation ${generation}` };
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded')
    return {
      done: false,
      failed: progressing.message ?? 'progress deadline exceeded',
      message: `progress deadline exceeded`,
    };
  const want = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < want) return { done: false, message: `${updated} of ${want} updated replicas` };
  if (total > updated) return { done: false, message: `${total - updated} old replicas pending termination` };
  if (available < updated) return { done: false, message: `${available} of ${updated} updated replicas available` };
  return { done: true, message: `${available} of ${want} replicas available` };
}

function describe(obj: KubernetesObject): string {
  return `${obj.kind}/${obj.metadata?.name ?? '?'}`;
}

/** The API server's own message ("namespaces \"x\" is forbidden: …") rather than client boilerplate. */
function apiError(e: unknown, what: string): Error {
  if (e instanceof ApiException) {
    const body = e.body as { message?: string } | string | undefined;
    const msg = typeof body === 'string' ? (safeJson(body)?.message ?? body) : body?.message;
    return new Error(`${what}: HTTP ${e.code}${msg ? `: ${msg}` : ''}`);
  }
  return new Error(`${what}: ${(e as Error).message}`);
}

function safeJson(text: string): { message?: string } | undefined {
  try {
    return JSON.parse(text) as { message?: string };
  } catch {
    return undefined;
  }
}

function isNotFound(e: unknown): boolean {
  return e instanceof ApiException && e.code === 404;
}

export class KubernetesDriver {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;

  constructor(readonly kc: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  static fromKubeconfig(opts: DriverOptions = {}): KubernetesDriver {
    const kc = new KubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    if (opts.context) kc.setCurrentContext(opts.context);
    if (!kc.getCurrentCluster())
      throw new Error('no current cluster in the kubeconfig (set KUBECONFIG, --kubeconfig or --context)');
    return new KubernetesDriver(kc);
  }

  /** Creates the namespace when it is missing; a user without read access to namespaces carries on. */
  async ensureNamespace(name: string): Promise<boolean> {
    try {
      await this.core.readNamespace({ name });
      return false;
    } catch (e) {
      if (!isNotFound(e)) {
        if (e instanceof ApiException && e.code === 403) return false;
        throw apiError(e, `namespace ${name}`);
      }
    }
    try {
      await this.core.createNamespace({
        body: {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'isomodel' } },
        },
      });
      return true;
    } catch (e) {
      if (e instanceof ApiException && e.code === 409) return false; // created meanwhile
      throw apiError(e, `namespace ${name}`);
    }
  }

  /** Server-side apply, in order (ConfigMap before the Deployment that mounts it). */
  async apply(objects: K8sObject[]): Promise<Applied[]> {
    const out: Applied[] = [];
    for (const obj of objects) {
      // client-node fills in defaults on the object it is given: send a copy.
      const spec = structuredClone(obj) as KubernetesObject;
      try {
        const res = await this.objects.patch(
          spec,
          undefined,
          undefined,
          FIELD_MANAGER,
          true,
          PatchStrategy.ServerSideApply,
        );
        out.push({
          kind: obj.kind!,
          name: res.metadata?.name ?? obj.metadata!.name!,
          namespace: res.metadata?.namespace,
          generation: res.metadata?.generation,
        });
      } catch (e) {
        throw apiError(e, `apply ${describe(obj)}`);
      }
    }
    return out;
  }

  /** Deletes in reverse order; objects already gone are skipped. Returns what was deleted. */
  async delete(objects: K8sObject[]): Promise<string[]> {
    const gone: string[] = [];
    for (const obj of [...objects].reverse()) {
      try {
        await this.objects.delete(
          structuredClone(obj) as KubernetesObject,
          undefined,
          undefined,
          undefined,
          undefined,
          'Foreground',
        );
        gone.push(describe(obj));
      } catch (e) {
        if (!isNotFound(e)) throw apiError(e, `delete ${describe(obj)}`);
      }
    }
    return gone;
  }

  /**
   * Watches one Deployment until its rollout is available, fails, or `timeoutMs` passes. A watch
   * the server closes (they time out) is opened again; each new watch starts with the current state.
   */
  waitForRollout(
    namespace: string,
    name: string,
    opts: { timeoutMs?: number; onProgress?: (message: string) => void } = {},
  ): Promise<V1Deployment> {
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const watch = new Watch(this.kc);
    const path = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments`;
    return new Promise<V1Deployment>((resolve, reject) => {
      let finished = false;
      let controller: AbortController | undefined;
      let last = 'no status received yet';
      let retry: NodeJS.Timeout | undefined;
      const finish = (err: Error | null, d?: V1Deployment): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(retry);
        controller?.abort();
        if (err) reject(err);
        else resolve(d!);
      };
      const timer = setTimeout(
        () =>
          finish(
            new Error(
              `deployment/${name} in ${namespace} is not available after ${Math.round(timeoutMs / 1000)} s: ${last}`,
            ),
          ),
        timeoutMs,
      );
      const open = async (): Promise<void> => {
        if (finished) return;
        try {
          controller = await watch.watch(
            path,
            { fieldSelector: `metadata.name=${name}` },
            (phase: string, obj: V1Deployment & { message?: string }) => {
              if (phase === 'ERROR') {
                last = `watch error: ${obj.message ?? 'unknown'}`;
                return; // e.g. 410 Gone: the server closes the stream and open() starts over
              }
              if (phase === 'DELETED') return finish(new Error(`deployment/${name} was deleted during the rollout`));
              const state = rolloutState(obj);
              if (state.message !== last) opts.onProgress?.(state.message);
              last = state.message;
              if (state.failed) finish(new Error(`deployment/${name} rollout failed: ${state.failed}`));
              else if (state.done) finish(null, obj);
            },
            (err: unknown) => {
              if (finished) return;
              if (err) last = `watch interrupted: ${(err as Error).message}`;
              retry = setTimeout(() => void open(), err ? 1000 : 100);
            },
          );
        } catch (e) {
          if (finished) return;
          last = `watch failed: ${(e as Error).message}`;
          retry = setTimeout(() => void open(), 1000);
        }
      };
      void open();
    });
  }
}
