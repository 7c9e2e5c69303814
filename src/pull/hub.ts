// A Hugging Face Hub client for `isomodel pull hf:<org>/<repo>[@revision]`, speaking the hub's
// HTTP protocol as huggingface_hub does: the file list from
// `GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true` (commit sha, each file's
// size, git blob id and, for LFS files, sha256), every file from
// `GET {endpoint}/{repo}/resolve/{commit}/{path}` (redirects followed; the token is sent to the
// endpoint's origin only). Files are downloaded into `<partial>/<commit>/…` and resumed from
// there with Range after an interruption; each is checked against its listed size and its sha256
// (LFS) or git blob id before it moves into place.
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { IsoError } from '../errors.js';
import { safeRelativePath } from './archive.js';
import { downloadFailed, fetchFollowing, gitBlobSha1, resumeTo, responseError, sha256File, shownUrl } from './http.js';

export interface HubSource {
  repo: string;
  revision: string;
}

const REPO = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

/** `hf:<org>/<repo>[@revision]` → repo and revision (default main); null when not an hf: source. */
export function parseHubSource(source: string): HubSource | null {
  if (!source.startsWith('hf:')) return null;
  const [repo = '', revision = 'main', ...rest] = source.slice(3).split('@');
  if (rest.length || !REPO.test(repo) || repo.includes('..'))
    throw new IsoError(
      'INVALID_REQUEST',
      `not a hub source: ${JSON.stringify(source)} (expected hf:<org>/<repo>[@revision])`,
    );
  if (!REVISION.test(revision) || revision.split('/').includes('..'))
    throw new IsoError('INVALID_REQUEST', `not a revision: ${JSON.stringify(revision)}`);
  return { repo, revision };
}

const listing = z
  .object({
    sha: z.string().regex(/^[0-9a-f]{40}$/, 'a 40-hex commit id'),
    siblings: z.array(
      z
        .object({
          rfilename: z.string().min(1),
          size: z.number().int().min(0).optional(),
          blobId: z
            .string()
            .regex(/^[0-9a-f]{40}$/)
            .optional(),
          lfs: z
            .object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().min(0) })
            .passthrough()
            .optional(),
        })
        .passthrough(),
    ),
  })
  .passthrough();

export interface HubFile {
  path: string;
  size: number;
  sha256?: string;
  blobId?: string;
}

export interface HubOptions {
  endpoint: string;
  token?: string;
  /** Largest total of the repository's files (the pull's size limit). */
  maxBytes: number;
  maxFiles: number;
  /** Only files matching one of these globs (`*` within a name, `**` across folders); all when empty. */
  include?: string[];
  onProgress?: (p: { file: string; received: number; total: number }) => void;
  signal?: AbortSignal;
}

function globToRegExp(glob: string): RegExp {
  const re = glob
    .split('**')
    .map((part) => part.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '[^/]*'))
    .join('.*');
  return new RegExp(`^${re}$`);
}

function endpointOf(endpoint: string): URL {
  let u: URL;
  try {
    u = new URL(endpoint.endsWith('/') ? endpoint : `${endpoint}/`);
  } catch {
    throw new IsoError('INVALID_REQUEST', `HF_ENDPOINT is not a URL: ${JSON.stringify(endpoint)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new IsoError('INVALID_REQUEST', `HF_ENDPOINT must be http(s): ${shownUrl(u)}`);
  return u;
}

/** The commit a revision names and the files of the repository at it (filtered by `include`). */
export async function listHubFiles(src: HubSource, opts: HubOptions): Promise<{ commit: string; files: HubFile[] }> {
  const base = endpointOf(opts.endpoint);
  const url = new URL(`api/models/${src.repo}/revision/${encodeURIComponent(src.revision)}?blobs=true`, base);
  const { res, url: last } = await fetchFollowing(url.href, {
    token: opts.token,
    authOrigin: base.origin,
    signal: opts.signal,
  });
  if (res.status === 404) {
    await res.body?.cancel();
    throw new IsoError(
      'NOT_FOUND',
      `the hub at ${shownUrl(base)} has no model repository ${src.repo} at revision ${src.revision}`,
    );
  }
  if (res.status !== 200) throw await responseError(res, last);
  const text = await res.text();
  if (text.length > 16 * 1024 * 1024) throw downloadFailed("the hub's file list is larger than 16 MiB");
  let parsed: z.infer<typeof listing>;
  try {
    parsed = listing.parse(JSON.parse(text));
  } catch (e) {
    throw downloadFailed(
      `the hub's file list for ${src.repo} is not what the hub protocol describes: ${(e as Error).message.slice(0, 300)}`,
    );
  }
  const include = (opts.include ?? []).map(globToRegExp);
  const files: HubFile[] = [];
  let total = 0;
  for (const s of parsed.siblings) {
    // A hostile hub's names are treated like a hostile archive's.
    const path = safeRelativePath(s.rfilename);
    if (!path) continue;
    if (include.length && !include.some((re) => re.test(path))) continue;
    const size = s.lfs?.size ?? s.size;
    if (size === undefined)
      throw downloadFailed(`the hub's file list gives no size for ${path} (asked with blobs=true)`);
    total += size;
    if (files.length + 1 > opts.maxFiles)
      throw new IsoError('UNSAFE_ARCHIVE', `${src.repo} holds more than ${opts.maxFiles} files`);
    if (total > opts.maxBytes)
      throw new IsoError(
        'UNSAFE_ARCHIVE',
        `${src.repo} holds more than ${opts.maxBytes} bytes${include.length ? ' in the files asked for' : ''}; pass include patterns or raise pull.max_bytes`,
      );
    files.push({ path, size, ...(s.lfs && { sha256: s.lfs.sha256 }), ...(s.blobId && { blobId: s.blobId }) });
  }
  if (!files.length)
    throw new IsoError(
      'NOT_FOUND',
      `${src.repo}@${src.revision} has no files${include.length ? ' matching the include patterns' : ''}`,
    );
  return { commit: parsed.sha, files };
}

/** Checks a downloaded file against what the listing says; throws DOWNLOAD_FAILED on a mismatch. */
async function verify(file: string, f: HubFile, etag: string | null): Promise<void> {
  if (f.sha256) {
    const got = await sha256File(file);
    if (got !== f.sha256)
      throw downloadFailed(`${f.path}: sha256 ${got} does not match the hub's ${f.sha256}`, { file: f.path });
    return;
  }
  if (f.blobId) {
    const got = await gitBlobSha1(file);
    if (got !== f.blobId)
      throw downloadFailed(`${f.path}: git blob id ${got} does not match the hub's ${f.blobId}`, { file: f.path });
    return;
  }
  // No digest in the listing: the resolve response's ETag (sha256 for LFS files, the blob id otherwise).
  const tag = etag?.replace(/^W\//, '').replace(/"/g, '') ?? '';
  if (/^[0-9a-f]{64}$/.test(tag)) return verify(file, { ...f, sha256: tag }, null);
  if (/^[0-9a-f]{40}$/.test(tag)) return verify(file, { ...f, blobId: tag }, null);
  throw downloadFailed(`${f.path}: neither the file list nor the download gives a digest to check it against`, {
    file: f.path,
  });
}

/**
 * Downloads the listed files into `dest`, resuming from `<partial>/<commit>/<path>.incomplete`.
 * Returns the bytes now in dest.
 */
export async function downloadHubFiles(
  src: HubSource,
  commit: string,
  files: HubFile[],
  dest: string,
  partial: string,
  opts: HubOptions,
): Promise<{ bytes: number; resumed: number }> {
  const base = endpointOf(opts.endpoint);
  let bytes = 0;
  let resumed = 0;
  for (const f of files) {
    const part = join(partial, commit, `${f.path}.incomplete`);
    mkdirSync(dirname(part), { recursive: true, mode: 0o700 });
    const url = new URL(`${src.repo}/resolve/${commit}/${f.path.split('/').map(encodeURIComponent).join('/')}`, base);
    let received = 0;
    const report = (n: number): void => {
      received += n;
      opts.onProgress?.({ file: f.path, received, total: f.size });
    };
    const { resumedFrom, res } = await resumeTo(url.href, part, f.size, {
      token: opts.token,
      authOrigin: base.origin,
      signal: opts.signal,
      onBytes: report,
    });
    resumed += resumedFrom;
    const { size } = statSync(part);
    if (size !== f.size)
      throw downloadFailed(`${f.path}: got ${size} bytes, the hub lists ${f.size}`, { file: f.path });
    try {
      await verify(part, f, res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    } catch (e) {
      // A corrupt partial must not be resumed again.
      rmSync(part, { force: true });
      throw e;
    }
    const target = join(dest, f.path);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    renameSync(part, target);
    bytes += f.size;
  }
  return { bytes, resumed };
}
