// The machine's NVIDIA GPUs as `nvidia-smi` reports them: what /health says about GPUs, what
// Prometheus exports, and the devices replicas are placed on (scheduler/placement.ts). Without
// nvidia-smi on PATH there are no GPUs; nothing here is ever assumed.
import { execFile } from 'node:child_process';

export interface GpuInfo {
  /** nvidia-smi's index: what CUDA_VISIBLE_DEVICES names (as does the uuid). */
  index: number;
  uuid: string;
  name: string;
  /** Percent of the last sample period the device was busy; null when the driver does not say. */
  utilization_percent: number | null;
  memory_used_mb: number | null;
  memory_total_mb: number | null;
}

export interface GpuSnapshot {
  /** At least one GPU answered. */
  available: boolean;
  gpus: GpuInfo[];
  /** Why there are none: nvidia-smi missing, failing, or unparsable. */
  error?: string;
  sampledAt: number;
}

export const NVIDIA_SMI_QUERY = [
  '--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total',
  '--format=csv,noheader,nounits',
];

/** A number, or null for nvidia-smi's "[N/A]", "[Not Supported]" and the like. */
function numberOrNull(field: string): number | null {
  const n = Number(field);
  return field !== '' && Number.isFinite(n) ? n : null;
}

/** Parses the CSV nvidia-smi prints for NVIDIA_SMI_QUERY; throws on a line it cannot read. */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const raw of csv.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(',').map((x) => x.trim());
    if (f.length !== 6 || !/^\d+$/.test(f[0]!)) throw new Error(`unexpected nvidia-smi line: ${line.slice(0, 200)}`);
    gpus.push({
      index: Number(f[0]),
      uuid: f[1]!,
      name: f[2]!,
      utilization_percent: numberOrNull(f[3]!),
      memory_used_mb: numberOrNull(f[4]!),
      memory_total_mb: numberOrNull(f[5]!),
    });
  }
  return gpus;
}

export interface GpuProbeOptions {
  /** The command (default nvidia-smi, looked up on PATH). */
  command?: string;
  /** How long a sample stays fresh. */
  ttlMs?: number;
  timeoutMs?: number;
  /** Environment of the command (PATH); default the gateway's. */
  env?: NodeJS.ProcessEnv;
}

/** Samples nvidia-smi at most once per ttl; callers in between share the last sample. */
export class GpuProbe {
  private last: GpuSnapshot | null = null;
  private running: Promise<GpuSnapshot> | null = null;

  constructor(private readonly opts: GpuProbeOptions = {}) {}

  /** A fresh sample (or the one being taken). */
  snapshot(): Promise<GpuSnapshot> {
    if (this.last && Date.now() - this.last.sampledAt < (this.opts.ttlMs ?? 5000)) return Promise.resolve(this.last);
    return this.sample();
  }

  /** The last sample at once (null before the first), starting a new one when it is stale. */
  current(): GpuSnapshot | null {
    if (!this.last || Date.now() - this.last.sampledAt >= (this.opts.ttlMs ?? 5000)) void this.sample();
    return this.last;
  }

  private sample(): Promise<GpuSnapshot> {
    this.running ??= new Promise<GpuSnapshot>((resolve) => {
      execFile(
        this.opts.command ?? 'nvidia-smi',
        NVIDIA_SMI_QUERY,
        { timeout: this.opts.timeoutMs ?? 5000, env: this.opts.env ?? process.env, maxBuffer: 1 << 20 },
        (err, stdout, stderr) => {
          const at = Date.now();
          if (err) {
            const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
            return resolve({
              available: false,
              gpus: [],
              error: missing
                ? 'nvidia-smi not found'
                : `nvidia-smi failed: ${(String(stderr).trim() || err.message).slice(0, 300)}`,
              sampledAt: at,
            });
          }
          try {
            const gpus = parseNvidiaSmi(String(stdout));
            resolve({ available: gpus.length > 0, gpus, sampledAt: at });
          } catch (e) {
            resolve({ available: false, gpus: [], error: (e as Error).message, sampledAt: at });
          }
        },
      );
    }).then((s) => {
      this.last = s;
      this.running = null;
      return s;
    });
    return this.running;
  }
}

/** The gateway's probe (started by the registry at init, so the first answer is already known). */
export const gpuProbe = new GpuProbe();

/** For /health: true or false once nvidia-smi has been asked, null before. */
export function gpuAvailable(): boolean | null {
  return gpuProbe.current()?.available ?? null;
}

/** Mean utilization (percent) of the given devices (indices or uuids); null when none is known. */
export function gpuUtilization(
  devices: Iterable<string>,
  snapshot: GpuSnapshot | null = gpuProbe.current(),
): number | null {
  if (!snapshot) return null;
  const values: number[] = [];
  for (const d of new Set(devices)) {
    const g = snapshot.gpus.find((x) => String(x.index) === d || x.uuid === d);
    if (g?.utilization_percent != null) values.push(g.utilization_percent);
  }
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}
