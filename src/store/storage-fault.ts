// When the state dir cannot be written (disk or quota full, read-only, I/O errors), every write
// to the state database fails: job submits, loads and unloads used to answer 500 INTERNAL_ERROR
// while /health/detailed said healthy. Such errors are told apart from bugs here: they answer
// 507 STORAGE_UNAVAILABLE naming the state dir, and the gateway's health is degraded, with the
// reason, until a probe write succeeds again. Predictions do not write synchronously (the
// request log is written by its own thread, best effort), so they keep working meanwhile.
import type Database from 'better-sqlite3';
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { IsoError } from '../errors.js';

/** SQLite result codes (extended ones start with these) that mean the storage, not the statement, failed. */
const SQLITE_FAULTS = [
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_READONLY',
  'SQLITE_CANTOPEN',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
];
/** errno codes of the same. */
const ERRNO_FAULTS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO']);

/** The storage code of an error that says the state dir cannot be written or read, else null. */
export function storageFaultCode(e: unknown): string | null {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (ERRNO_FAULTS.has(code)) return code;
  return SQLITE_FAULTS.some((c) => code === c || code.startsWith(`${c}_`)) ? code : null;
}

/** What a fault code means, in words, for the state dir `dir`. */
export function describeStorageFault(code: string, dir: string): string {
  if (/^(SQLITE_FULL|ENOSPC)/.test(code)) return `the file system holding the state dir ${dir} is full`;
  if (code === 'EDQUOT') return `the disk quota of the state dir ${dir} is used up`;
  if (/^(SQLITE_READONLY|EROFS)/.test(code)) return `the state dir ${dir} is read-only`;
  if (/^(SQLITE_IOERR|EIO)/.test(code)) return `I/O error on the state dir ${dir}`;
  if (code.startsWith('SQLITE_CANTOPEN')) return `files in the state dir ${dir} cannot be opened`;
  return `the state database in ${dir} is damaged`;
}

export interface StorageFault {
  code: string;
  reason: string;
  /** When it was first seen, and last seen (ms since the epoch). */
  since: number;
  last: number;
}

export interface StorageStatus {
  status: 'ok' | 'unavailable';
  state_dir: string;
  code?: string;
  reason?: string;
  since?: string;
}

/** How often a healthy store is probed (when asked), and a faulted one. */
const PROBE_HEALTHY_MS = 5000;
const PROBE_FAULTED_MS = 1000;
const PROBE_BYTES = 4096;

/**
 * The state dir's health: faults seen by any writer (noted here), and a probe that writes a
 * small file and allocates a page in the database (rolled back), run when health is asked for,
 * at most once per second while faulted and every 5 s otherwise.
 */
export class StorageHealth {
  private fault: StorageFault | null = null;
  private probedAt = 0;

  constructor(
    readonly stateDir: string,
    private readonly db: () => Database.Database | null,
  ) {}

  /** Records a storage fault (returns false for any other error). */
  note(e: unknown): boolean {
    const code = storageFaultCode(e);
    if (!code) return false;
    const now = Date.now();
    this.fault = {
      code,
      reason: `${describeStorageFault(code, this.stateDir)} (${code}: ${(e as Error).message})`,
      since: this.fault?.since ?? now,
      last: now,
    };
    return true;
  }

  /** The current state, probing first if the last probe is old enough. */
  check(now = Date.now()): StorageStatus {
    if (now - this.probedAt >= (this.fault ? PROBE_FAULTED_MS : PROBE_HEALTHY_MS)) {
      this.probedAt = now;
      const failure = this.probe();
      if (failure) this.note(failure);
      else this.fault = null;
    }
    const f = this.fault;
    return f
      ? {
          status: 'unavailable',
          state_dir: this.stateDir,
          code: f.code,
          reason: f.reason,
          since: new Date(f.since).toISOString(),
        }
      : { status: 'ok', state_dir: this.stateDir };
  }

  /** A real write: a file of PROBE_BYTES synced to disk, and a new database page; the error if either fails. */
  private probe(): unknown {
    const file = join(this.stateDir, `.storage-probe-${process.pid}`);
    let fd: number | null = null;
    try {
      fd = openSync(file, 'w');
      writeSync(fd, Buffer.alloc(PROBE_BYTES));
      fsyncSync(fd);
    } catch (e) {
      return e;
    } finally {
      if (fd !== null) closeSync(fd);
      try {
        unlinkSync(file);
      } catch {
        // never created
      }
    }
    const db = this.db();
    if (!db?.open) return null;
    // A page allocated in a transaction that is rolled back: SQLite checks the database's room
    // (max_page_count, a read-only file) without anything reaching the WAL. Never waits long
    // for the lock: a busy database is not a faulty one.
    const timeout = db.pragma('busy_timeout', { simple: true }) as number;
    db.pragma('busy_timeout = 50');
    try {
      db.exec('BEGIN IMMEDIATE');
      try {
        db.prepare('INSERT INTO storage_probe (b) VALUES (zeroblob(?))').run(PROBE_BYTES * 2);
      } finally {
        // SQLite ends the transaction itself on SQLITE_FULL and I/O errors.
        if (db.inTransaction) db.exec('ROLLBACK');
      }
    } catch (e) {
      return storageFaultCode(e) ? e : null;
    } finally {
      db.pragma(`busy_timeout = ${timeout}`);
    }
    return null;
  }
}

// The stores open in this process. An error reaching a route's error handler carries no trace
// of which database raised it; a gateway process has one state dir, and where several are open
// (tests), each is told and named.
const open = new Set<StorageHealth>();

export function trackStorage(h: StorageHealth): () => void {
  open.add(h);
  return () => open.delete(h);
}

/** STORAGE_UNAVAILABLE for an error that is a storage fault (noted on the open stores), else null. */
export function storageUnavailable(e: unknown): IsoError | null {
  const code = storageFaultCode(e);
  if (!code) return null;
  const dirs = [...open].filter((h) => h.note(e)).map((h) => h.stateDir);
  const where = dirs.length === 1 ? dirs[0]! : dirs.length ? dirs.join(', ') : 'the state dir';
  return new IsoError(
    'STORAGE_UNAVAILABLE',
    `${describeStorageFault(code, where)} (${code}): the state database could not be used for this request. Free space or fix the file system, then retry; predictions keep working meanwhile`,
    { storage_code: code, state_dir: dirs.length === 1 ? dirs[0] : dirs },
  );
}
