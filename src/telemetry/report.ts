// Performance reports: one model over a window (JSON: report-data.ts; a self-contained HTML page
// with inline SVG charts: report-html.ts), and the side-by-side comparison `isomodel bench
// --compare` produces (bench-compare.ts). This module gathers their names for its importers.
export {
  buildReport,
  HISTOGRAM_EDGES_MS,
  latencyHistogram,
  type HistogramBucket,
  type ModelReport,
  type ReportDeps,
  type SeriesPoint,
} from './report-data.js';
export { renderReportHtml } from './report-html.js';
export {
  compareRuns,
  latencyCdf,
  renderComparisonHtml,
  renderComparisonText,
  type BenchRun,
  type Comparison,
} from './bench-compare.js';
