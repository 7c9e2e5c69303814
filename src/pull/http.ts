// HTTP downloads for `isomodel pull`: redirects followed by hand (at most 5, http and https only,
// the Authorization header dropped as soon as a redirect leaves the origin it was meant for),
// bodies streamed to disk with a byte limit, resumable with Range.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync, truncateSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { IsoError } from '../errors.js';

const MAX_REDIRECTS = 5;

export interface FetchOptions {
  /** Sent as `Authorization: Bearer …`, only to `authOrigin`. */
  token?: string;
  /** The origin the token belongs to (the hub's endpoint). */
  authOrigin?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export function downloadFailed(message: string, details?: unknown): IsoError {
  return new IsoError('DOWNLOAD_FAILED', message, details);
}

/** Only http(s) URLs are fetched: never file:, data: or anything a redirect might name. */
function checkScheme(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw downloadFailed(`refusing to fetch ${url.protocol} URL ${url.href}: only http and https`);
}

/** A URL without its userinfo, for messages. */
export function shownUrl(url: string | URL): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.href;
}

/** GET with redirects followed by hand; the response of the last hop. */
export async function fetchFollowing(url: string, opts: FetchOptions = {}): Promise<{ res: Response; url: URL }> {
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    checkScheme(current);
    const headers: Record<string, string> = { 'user-agent': 'isomodel-pull', ...opts.headers };
    if (opts.token && opts.authOrigin && current.origin === opts.authOrigin)
      headers.authorization = `Bearer ${opts.token}`;
    let res: Response;
    try {
      res = await fetch(current, { headers, redirect: 'manual', signal: opts.signal });
    } catch (e) {
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw downloadFailed(`cannot reach ${shownUrl(current)}: ${cause ?? (e as Error).message}`);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw downloadFailed(`more than ${MAX_REDIRECTS} redirects from ${shownUrl(url)}`);
      current = new URL(res.headers.get('location')!, current);
      continue;
    }
    return { res, url: current };
  }
}

/** A failed response as an error naming the URL and what the server said (its first 300 characters). */
export async function responseError(res: Response, url: URL): Promise<IsoError> {
  let text = '';
  try {
    text = (await res.text()).slice(0, 300);
  } catch {
    // the body is only for the message
  }
  const hint = res.status === 401 || res.status === 403 ? ' (a gated or private repository needs HF_TOKEN)' : '';
  return downloadFailed(`${shownUrl(url)} answered ${res.status}${hint}${text ? `: ${text}` : ''}`, {
    status: res.status,
  });
}

/**
 * Streams a response body into `file` (appending when `append`), failing once more than
 * `maxBytes` would be in the file. `onBytes` gets each chunk's length (progress).
 */
export async function saveBody(
  res: Response,
  file: string,
  opts: { append: boolean; maxBytes: number; startAt: number; onBytes?: (n: number) => void },
): Promise<void> {
  if (!res.body) throw downloadFailed('empty response body');
  let size = opts.startAt;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > opts.maxBytes) return cb(downloadFailed(`the download is larger than ${opts.maxBytes} bytes`));
      opts.onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
      limit,
      createWriteStream(file, { flags: opts.append ? 'a' : 'w', mode: 0o644 }),
    );
  } catch (e) {
    if (e instanceof IsoError) throw e;
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    // What arrived stays in the file: the next pull resumes from there.
    throw downloadFailed(
      `the download broke off after ${size} bytes (${cause ?? (e as Error).message}); pull again to resume`,
    );
  }
}

/** Downloads `url` to `file` whole (no resume): package archives. */
export async function downloadTo(url: string, file: string, maxBytes: number, signal?: AbortSignal): Promise<void> {
  const { res, url: last } = await fetchFollowing(url, { signal });
  if (res.status !== 200) throw await responseError(res, last);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw downloadFailed(`${shownUrl(url)} is ${declared} bytes; the limit is ${maxBytes}`);
  }
  await saveBody(res, file, { append: false, maxBytes, startAt: 0 });
}

/**
 * Continues (or starts) a download into `file`: asks for the bytes after those already there
 * with Range, appends on 206, starts over on 200. `expected` bounds the file.
 */
export async function resumeTo(
  url: string,
  file: string,
  expected: number,
  opts: FetchOptions & { onBytes?: (n: number) => void },
): Promise<{ resumedFrom: number; res: Response }> {
  let have = 0;
  try {
    have = statSync(file).size;
  } catch {
    have = 0;
  }
  if (have > expected) {
    truncateSync(file, 0);
    have = 0;
  }
  const range: Record<string, string> = have > 0 && have < expected ? { range: `bytes=${have}-` } : {};
  if (have === expected && expected > 0) {
    // Everything is there already; only the digest check is left.
    return { resumedFrom: have, res: new Response(null, { status: 204 }) };
  }
  const { res, url: last } = await fetchFollowing(url, { ...opts, headers: { ...opts.headers, ...range } });
  if (res.status === 206) {
    const start = Number(/bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
    if (start !== have) {
      await res.body?.cancel();
      throw downloadFailed(`${shownUrl(last)} resumed at byte ${start}, not at ${have}`);
    }
    opts.onBytes?.(have);
    await saveBody(res, file, { append: true, maxBytes: expected, startAt: have, onBytes: opts.onBytes });
    return { resumedFrom: have, res };
  }
  if (res.status === 200) {
    await saveBody(res, file, { append: false, maxBytes: expected, startAt: 0, onBytes: opts.onBytes });
    return { resumedFrom: 0, res };
  }
  throw await responseError(res, last);
}

/** sha256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The git blob id of a file (sha1 of `blob <size>\0` + content), hex: the hub's id of a non-LFS file. */
export async function gitBlobSha1(file: string): Promise<string> {
  const h = createHash('sha1');
  h.update(`blob ${statSync(file).size}\0`);
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
