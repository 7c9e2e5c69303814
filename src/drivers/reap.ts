// Who owns a worker's leftovers, and how to end every process a worker started. A gateway
// names what it creates for workers (cgroups, scratch dirs) after its state dir and itself
// (pid + start time), so the next gateway of that state dir can tell an earlier one's leftovers
// from a live gateway's. Without cgroups, each launch carries a marker in its environment that
// its descendants inherit, so daemons that left the process group are still found.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; null when gone. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** This gateway process: `<pid>.<start time>`, unique on this machine until reboot. */
export function gatewayTag(pid = process.pid): string {
  return `${pid}.${processStartTime(pid) ?? '0'}`;
}

/** Whether the process a gatewayTag names is still the same running process. */
export function tagAlive(tag: string): boolean {
  const m = /^(\d+)\.(\d+)$/.exec(tag);
  if (!m) return false;
  return processStartTime(Number(m[1])) === m[2];
}

/** Short, stable name of a state dir: the first 12 hex digits of sha256(its real path). */
export function stateTag(stateDir: string): string {
  let p = resolve(stateDir);
  try {
    p = realpathSync(p);
  } catch {
    // not created yet: its resolved path
  }
  return createHash('sha256').update(p).digest('hex').slice(0, 12);
}

/** The environment variable whose value marks one launch's processes. */
export const LAUNCH_MARKER_VAR = 'ISOMODEL_LAUNCH';

/** Pids whose initial environment holds `VAR=marker` (and, when given, owned by uid). */
export function markedProcesses(marker: string, uid?: number): number[] {
  const needle = Buffer.from(`\0${LAUNCH_MARKER_VAR}=${marker}\0`);
  const first = Buffer.from(`${LAUNCH_MARKER_VAR}=${marker}\0`);
  const out: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    try {
      if (uid !== undefined) {
        const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (!m || Number(m[1]) !== uid) continue;
      }
      const env = readFileSync(`/proc/${pid}/environ`);
      if (env.subarray(0, first.length).equals(first) || env.includes(needle)) out.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** SIGKILLs every process carrying the marker until none is left (a few rounds, for forks in flight). */
export function killMarked(marker: string, uid?: number): number {
  let killed = 0;
  for (let round = 0; round < 20; round++) {
    const pids = markedProcesses(marker, uid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
  }
  return killed;
}
