// One sample of the engine's container stats (GET /containers/{id}/stats), reduced to what the
// scheduler and the monitor read. The engine sends one JSON object per second on the stream;
// fields it does not report stay undefined / null, never guessed.

export interface ContainerSample {
  /** Memory in use without reclaimable page cache, as `docker stats` shows it. */
  memoryBytes?: number;
  /** Percent of one core over the engine's last interval. */
  cpuPercent?: number;
  pids?: number;
  /** Cumulative block I/O of the container's cgroup; null when the engine has no blkio stats. */
  diskReadBytes: number | null;
  diskWriteBytes: number | null;
  /** Cumulative bytes over the container's interfaces; null when it has none (NetworkMode none). */
  netRxBytes: number | null;
  netTxBytes: number | null;
}

interface RawStats {
  memory_stats?: { usage?: number; stats?: Record<string, number> };
  cpu_stats?: {
    cpu_usage?: { total_usage?: number; percpu_usage?: number[] };
    system_cpu_usage?: number;
    online_cpus?: number;
  };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  pids_stats?: { current?: number };
  blkio_stats?: { io_service_bytes_recursive?: { op?: string; value?: number }[] | null };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function parseContainerStats(raw: unknown): ContainerSample {
  const s = (raw ?? {}) as RawStats;
  const out: ContainerSample = { diskReadBytes: null, diskWriteBytes: null, netRxBytes: null, netTxBytes: null };

  const mem = s.memory_stats;
  if (mem && num(mem.usage)) {
    // cgroup v1 reports total_inactive_file, v2 inactive_file: file cache the kernel can drop.
    const cache = mem.stats?.total_inactive_file ?? mem.stats?.inactive_file ?? 0;
    out.memoryBytes = Math.max(0, mem.usage - (num(cache) ? cache : 0));
  }

  const cpu = s.cpu_stats;
  const pre = s.precpu_stats;
  if (
    cpu &&
    pre &&
    num(cpu.cpu_usage?.total_usage) &&
    num(pre.cpu_usage?.total_usage) &&
    num(cpu.system_cpu_usage) &&
    num(pre.system_cpu_usage)
  ) {
    const cpuDelta = cpu.cpu_usage.total_usage - pre.cpu_usage.total_usage;
    const sysDelta = cpu.system_cpu_usage - pre.system_cpu_usage;
    const online = cpu.online_cpus || cpu.cpu_usage.percpu_usage?.length || 1;
    // system_cpu_usage counts every core: scale back to percent of one core.
    if (sysDelta > 0 && cpuDelta >= 0) out.cpuPercent = (cpuDelta / sysDelta) * online * 100;
  }

  if (num(s.pids_stats?.current)) out.pids = s.pids_stats.current;

  if (s.blkio_stats) {
    // An empty list is a measured zero: the cgroup lists only devices it did I/O on.
    let read = 0;
    let write = 0;
    for (const e of s.blkio_stats.io_service_bytes_recursive ?? []) {
      const op = (e.op ?? '').toLowerCase();
      if (!num(e.value)) continue;
      if (op === 'read') read += e.value;
      else if (op === 'write') write += e.value;
    }
    out.diskReadBytes = read;
    out.diskWriteBytes = write;
  }

  if (s.networks && Object.keys(s.networks).length) {
    let rx = 0;
    let tx = 0;
    for (const n of Object.values(s.networks)) {
      rx += num(n.rx_bytes) ? n.rx_bytes : 0;
      tx += num(n.tx_bytes) ? n.tx_bytes : 0;
    }
    out.netRxBytes = rx;
    out.netTxBytes = tx;
  }
  return out;
}
