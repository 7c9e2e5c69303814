// Safe unpacking of package archives (.tar.gz / .tar) and safe copying of local folders into a
// fresh folder: nothing may land outside it. Refused, with UNSAFE_ARCHIVE: absolute names, `..`
// segments, backslashes and NULs in names, symbolic links whose target is absolute or climbs
// (`..`), hard links, devices and FIFOs, a name met twice, more entries or more bytes than the
// limits (sizes are counted from the headers before anything is written, and again as bytes
// arrive). Symbolic links that only point down (`weights -> data/v1`) are kept: with no `..` in any
// target, every link resolves inside its own folder, however they chain.
import {
  createReadStream,
  createWriteStream,
  constants as fsConstants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  copyFileSync,
  chmodSync,
} from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { IsoError } from '../errors.js';

export interface ExtractLimits {
  /** Largest total of file bytes once unpacked. */
  maxBytes: number;
  /** Most entries (files, folders, links). */
  maxEntries: number;
}

export interface ExtractSummary {
  files: number;
  bytes: number;
}

const MAX_NAME_CHARS = 4096;
const MAX_DEPTH = 64;

function unsafe(message: string, name?: string): IsoError {
  return new IsoError('UNSAFE_ARCHIVE', message, name === undefined ? undefined : { entry: name.slice(0, 300) });
}

/**
 * An entry name as a relative path inside the folder, or '' for the folder itself (`./`).
 * Throws UNSAFE_ARCHIVE for a name that could reach outside it.
 */
export function safeRelativePath(name: string): string {
  if (name.length > MAX_NAME_CHARS) throw unsafe(`entry name longer than ${MAX_NAME_CHARS} characters`, name);
  if (name.includes('\0')) throw unsafe('entry name with a NUL character', name);
  if (name.includes('\\')) throw unsafe(`entry name with a backslash: ${JSON.stringify(name)}`, name);
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name))
    throw unsafe(`absolute entry name: ${JSON.stringify(name)}`, name);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`entry name with "..": ${JSON.stringify(name)}`, name);
  if (parts.length > MAX_DEPTH) throw unsafe(`entry nested deeper than ${MAX_DEPTH} folders`, name);
  return parts.join('/');
}

/** A symbolic link's target, if it stays inside the link's own folder (relative, never `..`). */
function safeLinkTarget(name: string, target: string | null | undefined): string {
  if (!target) throw unsafe(`symbolic link ${JSON.stringify(name)} without a target`, name);
  if (target.startsWith('/') || target.includes('\\') || target.includes('\0'))
    throw unsafe(`symbolic link ${JSON.stringify(name)} points outside the folder (${JSON.stringify(target)})`, name);
  if (target.split('/').includes('..'))
    throw unsafe(`symbolic link ${JSON.stringify(name)} points up with ".." (${JSON.stringify(target)})`, name);
  return target;
}

/** Checks, after the fact, that a path we are about to write through resolves inside root. */
function assertInside(root: string, path: string): void {
  const real = realpathSync(path);
  if (real !== root && !real.startsWith(root + sep)) throw unsafe(`${path} resolves outside the folder`);
}

class Budget {
  bytes = 0;
  entries = 0;
  constructor(private readonly limits: ExtractLimits) {}
  entry(name: string): void {
    if (++this.entries > this.limits.maxEntries) throw unsafe(`more than ${this.limits.maxEntries} entries`, name);
  }
  add(n: number, name: string): void {
    this.bytes += n;
    if (this.bytes > this.limits.maxBytes) throw unsafe(`more than ${this.limits.maxBytes} bytes once unpacked`, name);
  }
}

/** Whether a file starts with the gzip magic bytes. */
async function isGzip(file: string): Promise<boolean> {
  const head = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    createReadStream(file, { start: 0, end: 1 })
      .on('data', (c) => chunks.push(c as Buffer))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
  return head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Unpacks a .tar.gz (or plain .tar) file into `dest`, an empty folder that exists. */
export async function extractArchive(file: string, dest: string, limits: ExtractLimits): Promise<ExtractSummary> {
  const root = realpathSync(dest);
  const budget = new Budget(limits);
  const seen = new Set<string>();
  let files = 0;
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const done = (err?: unknown): void => {
      if (err) {
        stream.resume();
        extract.destroy(err as Error);
      } else next();
    };
    try {
      const rel = safeRelativePath(header.name);
      budget.entry(header.name);
      const type = header.type ?? 'file';
      if (rel === '') {
        if (type !== 'directory') throw unsafe('an entry with an empty name', header.name);
        stream.resume();
        return next();
      }
      if (seen.has(rel)) throw unsafe(`entry ${JSON.stringify(rel)} appears twice`, header.name);
      seen.add(rel);
      const target = join(root, rel);
      const parent = dirname(target);
      mkdirSync(parent, { recursive: true, mode: 0o755 });
      assertInside(root, parent);
      if (type === 'directory') {
        mkdirSync(target, { recursive: true, mode: 0o755 });
        stream.resume();
        return next();
      }
      if (type === 'symlink') {
        symlinkSync(safeLinkTarget(rel, header.linkname), target);
        stream.resume();
        return next();
      }
      if (type !== 'file' && type !== 'contiguous-file')
        throw unsafe(
          `entry ${JSON.stringify(rel)} is a ${type === 'link' ? 'hard link' : type}, which packages may not hold`,
          header.name,
        );
      budget.add(header.size ?? 0, header.name);
      files++;
      const mode = (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
      // O_EXCL + O_NOFOLLOW: never through a link, never over something already there.
      const fd = openSync(
        target,
        fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
        mode,
      );
      let written = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          written += chunk.length;
          if (written > (header.size ?? 0))
            return cb(unsafe(`entry ${JSON.stringify(rel)} holds more bytes than its header says`, header.name));
          cb(null, chunk);
        },
      });
      pipeline(stream, count, createWriteStream('', { fd })).then(() => done(), done);
    } catch (e) {
      done(e);
    }
  });
  const gzip = await isGzip(file);
  try {
    if (gzip) await pipeline(createReadStream(file), createGunzip(), extract);
    else await pipeline(createReadStream(file), extract);
  } catch (e) {
    if (e instanceof IsoError) throw e;
    throw new IsoError('INVALID_REQUEST', `not a readable .tar.gz or .tar archive: ${(e as Error).message}`);
  }
  return { files, bytes: budget.bytes };
}

/** Copies a local folder into `dest` (empty, existing) under the same rules as an archive. */
export function copyFolder(src: string, dest: string, limits: ExtractLimits): ExtractSummary {
  const budget = new Budget(limits);
  let files = 0;
  const walk = (from: string, to: string, rel: string): void => {
    for (const name of readdirSync(from).sort()) {
      const relName = rel ? `${rel}/${name}` : name;
      budget.entry(relName);
      const st = lstatSync(join(from, name));
      if (st.isDirectory()) {
        if (relName.split('/').length > MAX_DEPTH) throw unsafe(`folder nested deeper than ${MAX_DEPTH}`, relName);
        mkdirSync(join(to, name), { mode: 0o755 });
        walk(join(from, name), join(to, name), relName);
      } else if (st.isSymbolicLink()) {
        symlinkSync(safeLinkTarget(relName, readlinkSync(join(from, name))), join(to, name));
      } else if (st.isFile()) {
        budget.add(st.size, relName);
        copyFileSync(join(from, name), join(to, name), fsConstants.COPYFILE_EXCL);
        chmodSync(join(to, name), st.mode & 0o111 ? 0o755 : 0o644);
        files++;
      } else {
        throw unsafe(`${relName} is not a file, folder or link`, relName);
      }
    }
  };
  walk(src, dest, '');
  return { files, bytes: budget.bytes };
}
