// Memory and CPU limits through cgroups: v1 (memory + cpu controllers, as on these machines)
// or v2 (unified). Used when the hierarchy is writable; otherwise the process driver falls
// back to rlimits plus an RSS watchdog. A replica's group is also how all of its processes are
// found and killed (daemons included), and its name says which gateway made it, so leftovers
// of a gateway that died are removed by the next one (reapStale).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

export interface CgroupLimits {
  memoryMb: number;
  cpus: number;
}

export interface Cgroup {
  /** Files the launcher writes the child's pid into. */
  readonly procsFiles: string[];
  /** True once the kernel has OOM-killed something in this group. */
  oomKilled(): boolean;
  memoryBytes(): number | null;
  /** Processes in the group now. */
  pids(): number[];
  /**
   * SIGKILLs every process in the group, daemons that left the worker's process group
   * included: cgroup.kill (v2), else freeze-kill-thaw (v1 with the freezer), else SIGKILL over
   * cgroup.procs until it stays empty. Resolves once the group is empty or after `timeoutMs`.
   */
  killAll(timeoutMs?: number): Promise<boolean>;
  /** Removes the group's directories; false when one is still busy. */
  destroy(): boolean;
}

const ROOT = '/sys/fs/cgroup';
const GROUP = 'isomodel';

function tryWrite(file: string, value: string): boolean {
  try {
    writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
}

function mkdirOk(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    return true;
  } catch {
    return false;
  }
}

function readNumber(file: string): number | null {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}

function readKeyed(file: string, key: string): number | null {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function removeDir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** SIGKILL over a procs file until it reads empty (forks in flight get caught next round). */
async function killLoop(procs: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const pids = readPids(procs);
    if (pids.length === 0) return true;
    killPids(pids);
    if (Date.now() > end) return false;
    await sleep(10);
  }
}

class CgroupV1 implements Cgroup {
  readonly procsFiles: string[];
  constructor(
    private readonly memDir: string,
    private readonly cpuDir: string | null,
    private readonly freezerDir: string | null,
  ) {
    this.procsFiles = [memDir, cpuDir, freezerDir]
      .filter((d): d is string => d !== null)
      .map((d) => join(d, 'cgroup.procs'));
  }
  oomKilled(): boolean {
    const kills = readKeyed(join(this.memDir, 'memory.oom_control'), 'oom_kill');
    if (kills !== null) return kills > 0;
    return (readNumber(join(this.memDir, 'memory.failcnt')) ?? 0) > 0;
  }
  memoryBytes(): number | null {
    return readNumber(join(this.memDir, 'memory.usage_in_bytes'));
  }
  pids(): number[] {
    return readPids(join(this.memDir, 'cgroup.procs'));
  }
  async killAll(timeoutMs = 5000): Promise<boolean> {
    if (this.freezerDir && this.pids().length > 0) {
      // Frozen, nothing can fork while its pids are read and killed; the kills land on thaw.
      const state = join(this.freezerDir, 'freezer.state');
      if (tryWrite(state, 'FROZEN')) {
        const end = Date.now() + 1000;
        while (Date.now() < end) {
          try {
            if (readFileSync(state, 'utf8').trim() === 'FROZEN') break;
          } catch {
            break;
          }
          await sleep(5);
        }
        killPids(readPids(join(this.freezerDir, 'cgroup.procs')));
        killPids(this.pids());
        tryWrite(state, 'THAWED');
      }
    }
    return killLoop(join(this.memDir, 'cgroup.procs'), timeoutMs);
  }
  destroy(): boolean {
    let ok = removeDir(this.memDir);
    if (this.cpuDir) ok = removeDir(this.cpuDir) && ok;
    if (this.freezerDir) ok = removeDir(this.freezerDir) && ok;
    return ok;
  }
}

class CgroupV2 implements Cgroup {
  readonly procsFiles: string[];
  constructor(private readonly dir: string) {
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }
  oomKilled(): boolean {
    return (readKeyed(join(this.dir, 'memory.events'), 'oom_kill') ?? 0) > 0;
  }
  memoryBytes(): number | null {
    return readNumber(join(this.dir, 'memory.current'));
  }
  pids(): number[] {
    return readPids(join(this.dir, 'cgroup.procs'));
  }
  async killAll(timeoutMs = 5000): Promise<boolean> {
    // Linux >= 5.14 kills the whole group atomically; older kernels get the loop.
    if (this.pids().length > 0) tryWrite(join(this.dir, 'cgroup.kill'), '1');
    return killLoop(join(this.dir, 'cgroup.procs'), timeoutMs);
  }
  destroy(): boolean {
    return removeDir(this.dir);
  }
}

/** A replica group name: `<state tag>-<gateway tag>-<model>-<replica>-<n>` (reap.ts). */
const OWNED_NAME = /^([0-9a-f]{12})-(\d+\.\d+)-/;

export type CgroupVersion = 'v1' | 'v2' | 'none';

export interface CgroupCapabilities {
  version: CgroupVersion;
  /** v1: the freezer hierarchy is writable (freeze, kill, thaw). */
  freezer: boolean;
  /** v2: cgroup.kill (Linux >= 5.14). */
  kill: boolean;
}

export class CgroupManager {
  private constructor(
    readonly version: CgroupVersion,
    private readonly root = ROOT,
    /** v1: replicas also get a freezer group, so a kill cannot race their forks. */
    readonly freezer = false,
  ) {}

  /** Probes once whether we may create groups with memory limits here. */
  static detect(root = ROOT): CgroupManager {
    const v1mem = join(root, 'memory');
    if (existsSync(join(v1mem, 'memory.limit_in_bytes'))) {
      try {
        mkdirSync(join(v1mem, GROUP), { recursive: true });
        // All replicas sit under one parent: weigh it like one process per core, not one in all,
        // or replicas together get a single process's CPU share under contention.
        if (mkdirOk(join(root, 'cpu', GROUP)))
          tryWrite(join(root, 'cpu', GROUP, 'cpu.shares'), String(1024 * Math.max(1, availableParallelism())));
        const freezer =
          existsSync(join(root, 'freezer', 'cgroup.procs')) &&
          mkdirOk(join(root, 'freezer', GROUP)) &&
          existsSync(join(root, 'freezer', GROUP, 'freezer.state'));
        return new CgroupManager('v1', root, freezer);
      } catch {
        return new CgroupManager('none');
      }
    }
    if (existsSync(join(root, 'cgroup.controllers'))) {
      try {
        mkdirSync(join(root, GROUP), { recursive: true });
        tryWrite(join(root, 'cgroup.subtree_control'), '+memory +cpu');
        if (!tryWrite(join(root, GROUP, 'cgroup.subtree_control'), '+memory +cpu')) return new CgroupManager('none');
        return new CgroupManager('v2', root);
      } catch {
        return new CgroupManager('none');
      }
    }
    return new CgroupManager('none');
  }

  static disabled(): CgroupManager {
    return new CgroupManager('none');
  }

  /** What killing a whole group can use here (isomodel doctor). */
  capabilities(): CgroupCapabilities {
    return {
      version: this.version,
      freezer: this.freezer,
      kill: this.version === 'v2' && existsSync(join(this.root, GROUP, 'cgroup.kill')),
    };
  }

  /** The directories that hold replica groups (one per v1 controller used, one in v2). */
  private parents(): string[] {
    if (this.version === 'v1')
      return ['memory', 'cpu', ...(this.freezer ? ['freezer'] : [])].map((c) => join(this.root, c, GROUP));
    if (this.version === 'v2') return [join(this.root, GROUP)];
    return [];
  }

  /** An existing group by name (its directories that exist), or null. */
  private open(name: string): Cgroup | null {
    if (this.version === 'v1') {
      const [mem, cpu, frz] = ['memory', 'cpu', 'freezer'].map((c) => join(this.root, c, GROUP, name));
      const existing = (d: string): string | null => (existsSync(d) ? d : null);
      if (!existsSync(mem!)) return null;
      return new CgroupV1(mem!, existing(cpu!), this.freezer ? existing(frz!) : null);
    }
    if (this.version === 'v2') {
      const dir = join(this.root, GROUP, name);
      return existsSync(dir) ? new CgroupV2(dir) : null;
    }
    return null;
  }

  /** Names of the replica groups this machine holds, across controllers. */
  groupNames(): string[] {
    const names = new Set<string>();
    for (const p of this.parents()) {
      try {
        for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
      } catch {
        // controller not mounted
      }
    }
    return [...names];
  }

  /**
   * Removes groups an earlier gateway of this state dir left behind (SIGKILLed, crashed): those
   * named with `stateTag` whose gateway process is gone. What still runs in them is killed
   * first. Groups of a live gateway of the same state dir (an `isomodel batch` beside `serve`)
   * are left alone; of a dead gateway of another state dir, only empty ones are removed
   * (nothing of theirs is killed). Returns the names removed.
   */
  async reapStale(stateTag: string, gatewayAlive: (tag: string) => boolean): Promise<string[]> {
    const removed: string[] = [];
    for (const name of this.groupNames()) {
      const m = OWNED_NAME.exec(name);
      if (!m || gatewayAlive(m[2]!)) continue;
      if (m[1] !== stateTag) {
        // rmdir only succeeds on a group with no process (and no child group) in it.
        const gone = this.parents().map((p) => removeDir(join(p, name)));
        if (gone.every(Boolean)) removed.push(name);
        continue;
      }
      if (this.version === 'v1' && !existsSync(join(this.root, 'memory', GROUP, name))) {
        // Only a cpu / freezer half survived: nothing can run in it that the memory half held.
        for (const p of this.parents()) killPids(readPids(join(p, name, 'cgroup.procs')));
        for (const p of this.parents()) removeDir(join(p, name));
        removed.push(name);
        continue;
      }
      const cg = this.open(name);
      if (!cg) continue;
      await cg.killAll();
      for (let i = 0; i < 100 && !cg.destroy(); i++) await sleep(20);
      removed.push(name);
    }
    return removed;
  }

  /** A fresh group for one replica, or null when limits must be enforced another way. */
  create(id: string, limits: CgroupLimits): Cgroup | null {
    const bytes = String(limits.memoryMb * 1024 * 1024);
    const quota = String(Math.round(limits.cpus * 100_000));
    if (this.version === 'v1') {
      const memDir = join(this.root, 'memory', GROUP, id);
      try {
        mkdirSync(memDir, { recursive: true });
        if (!tryWrite(join(memDir, 'memory.limit_in_bytes'), bytes)) throw new Error('memory limit not writable');
        tryWrite(join(memDir, 'memory.memsw.limit_in_bytes'), bytes);
      } catch {
        removeDir(memDir);
        return null;
      }
      let cpuDir: string | null = join(this.root, 'cpu', GROUP, id);
      try {
        mkdirSync(cpuDir, { recursive: true });
        tryWrite(join(cpuDir, 'cpu.cfs_period_us'), '100000');
        if (!tryWrite(join(cpuDir, 'cpu.cfs_quota_us'), quota)) throw new Error('cpu quota not writable');
      } catch {
        if (cpuDir) removeDir(cpuDir);
        cpuDir = null;
      }
      const freezerDir =
        this.freezer && mkdirOk(join(this.root, 'freezer', GROUP, id)) ? join(this.root, 'freezer', GROUP, id) : null;
      return new CgroupV1(memDir, cpuDir, freezerDir);
    }
    if (this.version === 'v2') {
      const dir = join(this.root, GROUP, id);
      try {
        mkdirSync(dir, { recursive: true });
        if (!tryWrite(join(dir, 'memory.max'), bytes)) throw new Error('memory.max not writable');
        tryWrite(join(dir, 'memory.swap.max'), '0');
        tryWrite(join(dir, 'cpu.max'), `${quota} 100000`);
        return new CgroupV2(dir);
      } catch {
        removeDir(dir);
        return null;
      }
    }
    return null;
  }
}
