// A process's resource use read from /proc (Linux): CPU, RSS and open fds (stat, fd/) and disk
// I/O (io). Missing files mean the process is gone. Shared by the drivers (worker stats) and the
// monitor (per-replica I/O), so it sits below both and imports neither.
import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ on Linux
const PAGE_SIZE = 4096;

export interface ProcSample {
  rssBytes: number;
  /** utime + stime in seconds. */
  cpuSeconds: number;
  openFds: number;
  at: number;
}

export function sampleProc(pid: number): ProcSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces: split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const rssPages = Number(fields[21]);
    let openFds = 0;
    try {
      openFds = readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      openFds = 0;
    }
    return { rssBytes: rssPages * PAGE_SIZE, cpuSeconds: (utime + stime) / CLOCK_TICKS, openFds, at: Date.now() };
  } catch {
    return null;
  }
}

/** CPU use between two samples, in percent of one core. */
export function cpuPercent(prev: ProcSample, cur: ProcSample): number {
  const dt = (cur.at - prev.at) / 1000;
  if (dt <= 0) return 0;
  return Math.max(0, ((cur.cpuSeconds - prev.cpuSeconds) / dt) * 100);
}

export interface IoSample {
  disk_read_bytes: number | null;
  disk_write_bytes: number | null;
  net_rx_bytes: number | null;
  net_tx_bytes: number | null;
}

/** Which worker an I/O probe is asked about: a replica of one model version. */
export interface IoTarget {
  model: string;
  version: string;
  replica: { id: string; pid?: number };
}

/**
 * Per-worker I/O counters (cumulative bytes). The hook where container drivers plug their own
 * numbers (e.g. from the container engine's stats); a probe returns null or leaves fields out
 * for what it cannot measure, never a made-up value.
 */
export type WorkerIoProbe = (target: IoTarget) => Partial<IoSample> | null;

/**
 * Default probe for process workers: disk bytes from /proc/<pid>/io (the worker process
 * itself). Process workers share the host's network namespace, so there is no per-worker
 * network counter: those stay null.
 */
export const procIoProbe: WorkerIoProbe = ({ replica }) => {
  if (!replica.pid || replica.pid === process.pid) return null;
  try {
    const text = readFileSync(`/proc/${replica.pid}/io`, 'utf8');
    const field = (name: string): number | null => {
      const m = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    return { disk_read_bytes: field('read_bytes'), disk_write_bytes: field('write_bytes') };
  } catch {
    return null;
  }
};
