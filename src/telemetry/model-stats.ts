// Per-model request statistics are kept by the scheduler (scheduler/model-stats.ts), which
// telemetry reads; re-exported here for the modules that import them from telemetry.
export {
  LatencyWindow,
  ModelStats,
  WORK_SOURCES,
  type SourceCounts,
  type WorkSource,
} from '../scheduler/model-stats.js';
