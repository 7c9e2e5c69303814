// Where a replica runs: the GPUs it is given (CUDA_VISIBLE_DEVICES, from resources.gpus) and,
// for runtime onnx, the execution providers its session asks for. The placement reaches the
// worker as environment variables over the manifest's env (an explicit env entry in the manifest,
// or the operator's model_env, still wins).
import type { ModelPackage } from '../manifest/load.js';
import type { Manifest } from '../manifest/schema.js';
import { gpuProbe, type GpuProbe } from '../util/gpu.js';

/**
 * Devices replicas may be given: the gateway's own CUDA_VISIBLE_DEVICES when it is set (an
 * operator's restriction), else every GPU nvidia-smi lists, named by UUID (CUDA's own device
 * order need not be nvidia-smi's; a UUID means the same device to both).
 */
export async function visibleDevices(
  env: NodeJS.ProcessEnv = process.env,
  probe: GpuProbe = gpuProbe,
): Promise<string[]> {
  const own = env.CUDA_VISIBLE_DEVICES;
  if (own !== undefined)
    return own
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '' && !s.startsWith('-'));
  return (await probe.snapshot()).gpus.map((g) => g.uuid || String(g.index));
}

export interface DeviceLease {
  /** The devices, possibly fewer than asked for (then the worker sees only these; none: no GPU). */
  readonly devices: readonly string[];
  release(): void;
}

/** Hands out devices to replicas, least used first, across every model of one gateway. */
export class DeviceAllocator {
  private readonly users = new Map<string, number>();

  constructor(private readonly pool: () => Promise<string[]> = () => visibleDevices()) {}

  async acquire(count: number): Promise<DeviceLease> {
    const devices = count > 0 ? await this.pool() : [];
    const chosen = devices
      .map((d, i) => ({ d, i, n: this.users.get(d) ?? 0 }))
      .sort((a, b) => a.n - b.n || a.i - b.i)
      .slice(0, count)
      .map((x) => x.d);
    for (const d of chosen) this.users.set(d, (this.users.get(d) ?? 0) + 1);
    let released = false;
    return {
      devices: chosen,
      release: () => {
        if (released) return;
        released = true;
        for (const d of chosen) {
          const n = (this.users.get(d) ?? 1) - 1;
          if (n > 0) this.users.set(d, n);
          else this.users.delete(d);
        }
      },
    };
  }

  /** Replicas per device now. */
  usage(): Record<string, number> {
    return Object.fromEntries(this.users);
  }
}

/** The onnxruntime execution providers of a replica: the manifest's, else cuda first when it has a GPU. */
export function executionProviders(m: Manifest, devices: readonly string[]): string[] {
  return m.resources.execution_providers ?? (devices.length > 0 ? ['cuda', 'cpu'] : ['cpu']);
}

/** Variables that tell a replica where it runs. */
export function placementEnv(m: Manifest, devices: readonly string[]): Record<string, string> {
  // A model that asked for no GPU sees none: it cannot take a device another model was given.
  const env: Record<string, string> = { CUDA_VISIBLE_DEVICES: devices.join(',') };
  if (m.runtime === 'onnx') env.ISOMODEL_ONNX_PROVIDERS = executionProviders(m, devices).join(',');
  return env;
}

/** The package as one replica sees it: placement variables under the manifest's own env. */
export function placedPackage(pkg: ModelPackage, devices: readonly string[]): ModelPackage {
  const m = pkg.manifest;
  return { ...pkg, manifest: { ...m, env: { ...placementEnv(m, devices), ...m.env } } };
}
