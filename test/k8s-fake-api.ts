// A fake Kubernetes API server on 127.0.0.1 implementing just what src/k8s/driver.ts calls, so the
// real @kubernetes/client-node code runs (discovery, server-side apply, namespaces, delete, and
// a streaming watch). It also plays the Deployment controller: after an apply, status moves
// towards an available rollout, stays stuck, or hits the progress deadline. NOT a real cluster:
// no admission, no defaulting beyond spec.replicas, no field ownership. Plain HTTP, so the kubeconfig
// sets insecure-skip-tls-verify (client-node refuses http:// otherwise).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  authorization?: string;
  body?: any;
}

export type RolloutMode = 'available' | 'stuck' | 'deadline';

export interface FakeApi {
  url: string;
  token: string;
  requests: RecordedRequest[];
  /** Objects by API path (/apis/apps/v1/namespaces/ns/deployments/name). */
  objects: Map<string, any>;
  namespaces: Set<string>;
  rollout: RolloutMode;
  /** Close every watch stream this long after it opens (0: keep open), to exercise reconnects. */
  closeWatchesAfterMs: number;
  /** Delay between controller status steps. */
  stepMs: number;
  kubeconfig(): string;
  close(): Promise<void>;
}

const GROUPS: Record<string, { name: string; kind: string; namespaced: boolean }[]> = {
  '/api/v1': [
    { name: 'configmaps', kind: 'ConfigMap', namespaced: true },
    { name: 'services', kind: 'Service', namespaced: true },
    { name: 'namespaces', kind: 'Namespace', namespaced: false },
  ],
  '/apis/apps/v1': [{ name: 'deployments', kind: 'Deployment', namespaced: true }],
  '/apis/autoscaling/v2': [{ name: 'horizontalpodautoscalers', kind: 'HorizontalPodAutoscaler', namespaced: true }],
  '/apis/networking.k8s.io/v1': [{ name: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true }],
};

const OBJECT_PATH = /^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/;

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: code < 300 ? 'Success' : 'Failure',
      reason,
      message,
      code,
    }),
  );
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

export async function startFakeApi(opts: { rollout?: RolloutMode; stepMs?: number } = {}): Promise<FakeApi> {
  const token = `fake-${randomUUID()}`;
  const objects = new Map<string, any>();
  const namespaces = new Set<string>(['default']);
  const requests: RecordedRequest[] = [];
  const watchers = new Set<{ prefix: string; name?: string; res: ServerResponse }>();
  const timers = new Set<NodeJS.Timeout>();
  let version = 1;

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const notify = (path: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: any): void => {
    for (const w of watchers) {
      if (!path.startsWith(w.prefix + '/')) continue;
      if (w.name && obj.metadata?.name !== w.name) continue;
      w.res.write(JSON.stringify({ type, object: obj }) + '\n');
    }
  };

  const setStatus = (path: string, generation: number, s: Record<string, unknown>): void => {
    const obj = objects.get(path);
    if (!obj || obj.metadata.generation !== generation) return; // deleted or re-applied meanwhile
    obj.status = s;
    obj.metadata.resourceVersion = String(++version);
    notify(path, 'MODIFIED', obj);
  };

  /** The Deployment controller, reduced to the status fields a rollout check reads. */
  const control = (path: string, obj: any): void => {
    const gen = obj.metadata.generation as number;
    const want = obj.spec.replicas as number;
    later(api.stepMs, () => {
      if (api.rollout === 'deadline') {
        setStatus(path, gen, {
          observedGeneration: gen,
          replicas: want,
          updatedReplicas: 0,
          conditions: [
            {
              type: 'Progressing',
              status: 'False',
              reason: 'ProgressDeadlineExceeded',
              message: `ReplicaSet "${obj.metadata.name}-abc" has timed out progressing.`,
            },
          ],
        });
        return;
      }
      setStatus(path, gen, {
        observedGeneration: gen,
        replicas: want,
        updatedReplicas: want,
        availableReplicas: 0,
        readyReplicas: 0,
      });
      if (api.rollout === 'stuck') return;
      later(api.stepMs, () =>
        setStatus(path, gen, {
          observedGeneration: gen,
          replicas: want,
          updatedReplicas: want,
          readyReplicas: want,
          availableReplicas: want,
          conditions: [
            { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
            { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' },
          ],
        }),
      );
    });
  };

  const apply = (path: string, kind: string, body: any, res: ServerResponse): void => {
    const old = objects.get(path);
    const spec =
      kind === 'Deployment' ? { ...body.spec, replicas: body.spec?.replicas ?? old?.spec?.replicas ?? 1 } : body.spec;
    const changed =
      !old ||
      JSON.stringify(old.spec) !== JSON.stringify(spec) ||
      JSON.stringify(old.data) !== JSON.stringify(body.data);
    const obj = {
      ...body,
      ...(spec !== undefined ? { spec } : {}),
      metadata: {
        ...body.metadata,
        uid: old?.metadata.uid ?? randomUUID(),
        creationTimestamp: old?.metadata.creationTimestamp ?? new Date().toISOString(),
        generation: (old?.metadata.generation ?? 0) + (changed ? 1 : 0),
        resourceVersion: String(++version),
        managedFields: [{ manager: 'isomodel', operation: 'Apply' }],
      },
      ...(old?.status ? { status: old.status } : {}),
    };
    objects.set(path, obj);
    notify(path, old ? 'MODIFIED' : 'ADDED', obj);
    if (kind === 'Deployment' && changed) control(path, obj);
    json(res, old ? 200 : 201, obj);
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : await readBody(req);
      const rec: RecordedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        body,
      };
      requests.push(rec);
      if (req.headers.authorization !== `Bearer ${token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');

      const group = GROUPS[url.pathname];
      if (group && req.method === 'GET') {
        return json(res, 200, {
          kind: 'APIResourceList',
          apiVersion: 'v1',
          groupVersion: url.pathname.replace(/^\/apis?\//, ''),
          resources: group.map((r) => ({
            ...r,
            singularName: r.kind.toLowerCase(),
            verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          })),
        });
      }

      const ns = /^\/api\/v1\/namespaces(?:\/([^/]+))?$/.exec(url.pathname);
      if (ns) {
        if (req.method === 'GET' && ns[1])
          return namespaces.has(ns[1])
            ? json(res, 200, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns[1] } })
            : status(res, 404, 'NotFound', `namespaces "${ns[1]}" not found`);
        if (req.method === 'POST' && !ns[1]) {
          const name = body?.metadata?.name as string;
          if (namespaces.has(name)) return status(res, 409, 'AlreadyExists', `namespaces "${name}" already exists`);
          namespaces.add(name);
          return json(res, 201, { ...body, status: { phase: 'Active' } });
        }
      }

      const m = OBJECT_PATH.exec(url.pathname);
      const resource = m ? GROUPS[m[1]!]?.find((r) => r.name === m[3]) : undefined;
      if (!m || !resource)
        return status(
          res,
          404,
          'NotFound',
          `the server could not find the requested resource (${req.method} ${url.pathname})`,
        );
      const [, prefix, namespace, plural, name] = m;
      const collection = `${prefix}/namespaces/${namespace}/${plural}`;
      if (!namespaces.has(namespace!)) return status(res, 404, 'NotFound', `namespaces "${namespace}" not found`);

      if (!name && req.method === 'GET' && url.searchParams.get('watch') === 'true') {
        const field = /^metadata\.name=(.+)$/.exec(url.searchParams.get('fieldSelector') ?? '');
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        const w = { prefix: collection, name: field?.[1], res };
        watchers.add(w);
        // A watch without resourceVersion starts with the current state, as the API server's does.
        for (const [p, obj] of objects)
          if (p.startsWith(collection + '/') && (!w.name || obj.metadata.name === w.name))
            res.write(JSON.stringify({ type: 'ADDED', object: obj }) + '\n');
        res.on('close', () => watchers.delete(w));
        if (api.closeWatchesAfterMs > 0) later(api.closeWatchesAfterMs, () => res.end());
        return;
      }
      if (!name) return status(res, 405, 'MethodNotAllowed', 'only watches are served on collections');
      const path = `${collection}/${name}`;
      if (req.method === 'GET')
        return objects.has(path)
          ? json(res, 200, objects.get(path))
          : status(res, 404, 'NotFound', `${plural} "${name}" not found`);
      if (req.method === 'DELETE') {
        const obj = objects.get(path);
        if (!obj) return status(res, 404, 'NotFound', `${plural} "${name}" not found`);
        objects.delete(path);
        notify(path, 'DELETED', obj);
        return status(res, 200, '', `${plural} "${name}" deleted`);
      }
      if (req.method === 'PATCH') {
        if (req.headers['content-type'] !== 'application/apply-patch+yaml')
          return status(
            res,
            415,
            'UnsupportedMediaType',
            `only server-side apply is faked, got ${req.headers['content-type']}`,
          );
        if (!url.searchParams.get('fieldManager'))
          return status(res, 422, 'Invalid', 'fieldManager is required for apply requests');
        if (body?.kind !== resource.kind || body?.metadata?.name !== name)
          return status(res, 400, 'BadRequest', 'the body does not match the URL');
        return apply(path, resource.kind, body, res);
      }
      return status(res, 405, 'MethodNotAllowed', `${req.method} is not faked`);
    })().catch((e: Error) => status(res, 500, 'InternalError', e.message));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  const api: FakeApi = {
    url,
    token,
    requests,
    objects,
    namespaces,
    rollout: opts.rollout ?? 'available',
    closeWatchesAfterMs: 0,
    stepMs: opts.stepMs ?? 30,
    kubeconfig: () =>
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{name: fake, cluster: {server: "' + url + '", insecure-skip-tls-verify: true}}]',
        'users: [{name: fake, user: {token: "' + token + '"}}]',
        'contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: default}}]',
        'current-context: fake',
        '',
      ].join('\n'),
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const w of watchers) w.res.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return api;
}
