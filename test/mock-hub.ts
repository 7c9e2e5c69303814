// A stand-in for the Hugging Face Hub on 127.0.0.1 (no hub is reachable from the tests): the
// endpoints isomodel's hub client uses, with the hub's shapes. GET /api/models/{org}/{repo}/revision/{rev}
// answers {id, sha, siblings:[{rfilename, size, blobId, lfs?:{sha256,size,pointerSize}}]}; GET
// /{org}/{repo}/resolve/{commit}/{path} serves the file (Range → 206, ETag, X-Repo-Commit), LFS
// files through a 302 to a second server (the CDN, another origin: the token must not follow).
// Faults on demand: cut a file after N bytes once, serve wrong bytes, list hostile names.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubFileSpec {
  path: string;
  data: Buffer;
  /** Served as an LFS file (sha256 in the listing, redirect to the CDN). */
  lfs?: boolean;
}

export interface HubRepo {
  repo: string;
  revision?: string;
  files: HubFileSpec[];
  /** Names listed that are not in `files` (hostile listings): size 1, any content. */
  extraListed?: string[];
}

export interface HubLogEntry {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  authorization?: string;
  range?: string;
}

export interface MockHub {
  url: string;
  cdnUrl: string;
  log: HubLogEntry[];
  /** Next download of this path stops after `bytes` bytes (connection destroyed). */
  cutOnce(path: string, bytes: number): void;
  /** Downloads of this path serve these bytes instead (same length: a corrupt mirror). */
  corrupt(path: string, data: Buffer | null): void;
  /** Requests must carry `Authorization: Bearer <token>` (a gated repository). */
  requireToken(token: string | null): void;
  close(): Promise<void>;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const gitBlob = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

/** Serves `data` honouring a Range header; `cut` stops after that many bytes of the body. */
function serveBytes(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  data: Buffer,
  headers: Record<string, string>,
  cut?: number,
): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  if (start > data.length) {
    res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
    return;
  }
  const body = data.subarray(start);
  res.writeHead(m ? 206 : 200, {
    ...headers,
    'content-length': String(body.length),
    'accept-ranges': 'bytes',
    ...(m && { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` }),
  });
  if (cut !== undefined && cut < body.length) {
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.end(body);
}

export async function startMockHub(repos: HubRepo[]): Promise<MockHub> {
  const log: HubLogEntry[] = [];
  const cuts = new Map<string, number>();
  const corrupted = new Map<string, Buffer>();
  let token: string | null = null;
  const commitOf = (r: HubRepo): string =>
    createHash('sha1')
      .update(`${r.repo}@${r.revision ?? 'main'}`)
      .digest('hex');
  const record = (server: 'hub' | 'cdn', req: http.IncomingMessage): void => {
    log.push({
      server,
      method: req.method ?? '',
      url: req.url ?? '',
      ...(req.headers.authorization && { authorization: req.headers.authorization }),
      ...(req.headers.range && { range: req.headers.range }),
    });
  };
  const find = (repo: string, commit: string, path: string): HubFileSpec | undefined => {
    const r = repos.find((x) => x.repo === repo && commitOf(x) === commit);
    return r?.files.find((f) => f.path === path);
  };
  const fileBytes = (f: HubFileSpec): Buffer => corrupted.get(f.path) ?? f.data;
  const takeCut = (path: string): number | undefined => {
    const c = cuts.get(path);
    cuts.delete(path);
    return c;
  };

  const cdn = http.createServer((req, res) => {
    record('cdn', req);
    const m = /^\/lfs\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(req.url ?? '');
    const f = m ? find(m[1]!, m[2]!, decodeURIComponent(m[3]!)) : undefined;
    if (!f) return void res.writeHead(404).end('not found');
    serveBytes(req, res, fileBytes(f), { etag: `"${sha256(f.data)}"` }, takeCut(f.path));
  });
  const cdnUrl = await listen(cdn);

  const hub = http.createServer((req, res) => {
    record('hub', req);
    const url = new URL(req.url ?? '/', 'http://hub');
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      return void res
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: 'Access to this repository is restricted.' }));
    }
    const info = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (info && req.method === 'GET') {
      const r = repos.find((x) => x.repo === info[1] && (x.revision ?? 'main') === decodeURIComponent(info[2]!));
      if (!r)
        return void res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: 'Repository not found' }));
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = [
        ...r.files.map((f) => ({
          rfilename: f.path,
          ...(blobs && { size: f.data.length, blobId: gitBlob(f.data) }),
          ...(blobs && f.lfs && { lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 134 } }),
        })),
        ...(r.extraListed ?? []).map((name) => ({
          rfilename: name,
          ...(blobs && { size: 1, blobId: gitBlob(Buffer.from('x')) }),
        })),
      ];
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ id: r.repo, modelId: r.repo, sha: commitOf(r), private: false, siblings }));
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([0-9a-f]{40})\/(.+)$/.exec(url.pathname);
    if (resolve && req.method === 'GET') {
      const f = find(resolve[1]!, resolve[2]!, decodeURIComponent(resolve[3]!));
      if (!f) return void res.writeHead(404).end('Entry not found');
      const common = { 'x-repo-commit': resolve[2]! };
      if (f.lfs) {
        return void res
          .writeHead(302, {
            ...common,
            location: `${cdnUrl}/lfs/${resolve[1]}/${resolve[2]}/${resolve[3]}`,
            'x-linked-size': String(f.data.length),
            'x-linked-etag': `"${sha256(f.data)}"`,
          })
          .end();
      }
      return serveBytes(req, res, fileBytes(f), { ...common, etag: `"${gitBlob(f.data)}"` }, takeCut(f.path));
    }
    res.writeHead(404).end('no such endpoint');
  });
  const url = await listen(hub);

  return {
    url,
    cdnUrl,
    log,
    cutOnce: (path, bytes) => cuts.set(path, bytes),
    corrupt: (path, data) => (data ? corrupted.set(path, data) : corrupted.delete(path)),
    requireToken: (t) => (token = t),
    close: async () => {
      for (const s of [hub, cdn]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}
