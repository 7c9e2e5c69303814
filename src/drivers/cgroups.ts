// Memory and CPU limits through cgroups: v1 (memory + cpu controllers, as on these machines)
// or v2 (unified). Used when the hierarchy is writable; otherwise the process driver falls
// back to rlimits plus an RSS watchdog.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
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
  destroy(): void;
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

function removeDir(dir: string): void {
  // A cgroup can only be removed once its processes are gone; they are by the time we get here.
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    }
  }
}

class CgroupV1 implements Cgroup {
  readonly procsFiles: string[];
  constructor(
    private readonly memDir: string,
    private readonly cpuDir: string | null,
  ) {
    this.procsFiles = [join(memDir, 'cgroup.procs'), ...(cpuDir ? [join(cpuDir, 'cgroup.procs')] : [])];
  }
  oomKilled(): boolean {
    const kills = readKeyed(join(this.memDir, 'memory.oom_control'), 'oom_kill');
    if (kills !== null) return kills > 0;
    return (readNumber(join(this.memDir, 'memory.failcnt')) ?? 0) > 0;
  }
  memoryBytes(): number | null {
    return readNumber(join(this.memDir, 'memory.usage_in_bytes'));
  }
  destroy(): void {
    removeDir(this.memDir);
    if (this.cpuDir) removeDir(this.cpuDir);
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
  destroy(): void {
    removeDir(this.dir);
  }
}

export type CgroupVersion = 'v1' | 'v2' | 'none';

export class CgroupManager {
  private constructor(readonly version: CgroupVersion) {}

  /** Probes once whether we may create groups with memory limits here. */
  static detect(root = ROOT): CgroupManager {
    const v1mem = join(root, 'memory');
    if (existsSync(join(v1mem, 'memory.limit_in_bytes'))) {
      try {
        mkdirSync(join(v1mem, GROUP), { recursive: true });
        // All replicas sit under one parent: weigh it like one process per core, not one in all,
        // or replicas together get a single process's CPU share under contention.
        if (mkdirOk(join(root, 'cpu', GROUP))) tryWrite(join(root, 'cpu', GROUP, 'cpu.shares'), String(1024 * Math.max(1, availableParallelism())));
        return new CgroupManager('v1');
      } catch {
        return new CgroupManager('none');
      }
    }
    if (existsSync(join(root, 'cgroup.controllers'))) {
      try {
        mkdirSync(join(root, GROUP), { recursive: true });
        tryWrite(join(root, 'cgroup.subtree_control'), '+memory +cpu');
        if (!tryWrite(join(root, GROUP, 'cgroup.subtree_control'), '+memory +cpu')) return new CgroupManager('none');
        return new CgroupManager('v2');
      } catch {
        return new CgroupManager('none');
      }
    }
    return new CgroupManager('none');
  }

  static disabled(): CgroupManager {
    return new CgroupManager('none');
  }

  /** A fresh group for one replica, or null when limits must be enforced another way. */
  create(id: string, limits: CgroupLimits): Cgroup | null {
    const bytes = String(limits.memoryMb * 1024 * 1024);
    const quota = String(Math.round(limits.cpus * 100_000));
    if (this.version === 'v1') {
      const memDir = join(ROOT, 'memory', GROUP, id);
      try {
        mkdirSync(memDir, { recursive: true });
        if (!tryWrite(join(memDir, 'memory.limit_in_bytes'), bytes)) throw new Error('memory limit not writable');
        tryWrite(join(memDir, 'memory.memsw.limit_in_bytes'), bytes);
      } catch {
        removeDir(memDir);
        return null;
      }
      let cpuDir: string | null = join(ROOT, 'cpu', GROUP, id);
      try {
        mkdirSync(cpuDir, { recursive: true });
        tryWrite(join(cpuDir, 'cpu.cfs_period_us'), '100000');
        if (!tryWrite(join(cpuDir, 'cpu.cfs_quota_us'), quota)) throw new Error('cpu quota not writable');
      } catch {
        if (cpuDir) removeDir(cpuDir);
        cpuDir = null;
      }
      return new CgroupV1(memDir, cpuDir);
    }
    if (this.version === 'v2') {
      const dir = join(ROOT, GROUP, id);
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
