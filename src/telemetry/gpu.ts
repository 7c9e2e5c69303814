// The GPU probe lives in util/gpu.ts, below the scheduler (placement) and telemetry (gauges,
// /health) that both read it; re-exported here for the modules that import it from telemetry.
export {
  GpuProbe,
  gpuAvailable,
  gpuProbe,
  gpuUtilization,
  NVIDIA_SMI_QUERY,
  parseNvidiaSmi,
  type GpuInfo,
  type GpuProbeOptions,
  type GpuSnapshot,
} from '../util/gpu.js';
