// Reads a process's resource use from /proc (Linux). Missing files mean the process is gone.
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
