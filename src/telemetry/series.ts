// Small numeric helpers shared by the monitor, the performance collector and the reports:
// nearest-rank percentiles, min/avg/max with a least-squares trend, bucketing, window parsing.
import { IsoError } from '../errors.js';

export interface LatencySummary {
  count: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

const round3 = (v: number): number => Math.round(v * 1000) / 1000;

/** Nearest-rank percentile of an ascending array: the smallest value with at least p% of values at or below it. */
export function percentileSorted(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function summarizeLatencies(values: number[]): LatencySummary {
  if (values.length === 0) return { count: 0, min: null, mean: null, p50: null, p90: null, p99: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return {
    count: sorted.length,
    min: round3(sorted[0]!),
    mean: round3(mean),
    p50: round3(percentileSorted(sorted, 50)!),
    p90: round3(percentileSorted(sorted, 90)!),
    p99: round3(percentileSorted(sorted, 99)!),
    max: round3(sorted[sorted.length - 1]!),
  };
}

export type Trend = 'up' | 'down' | 'flat';

export interface SeriesStats {
  count: number;
  min: number | null;
  avg: number | null;
  max: number | null;
  last: number | null;
  /** Least-squares slope, in units per minute. */
  slope_per_min: number | null;
  /** The fitted change over the series' time span. */
  change: number | null;
  trend: Trend;
}

/**
 * min/avg/max and a trend from the least-squares slope: 'up' or 'down' when the fitted change
 * over the span is more than `tolerance` (default 10%) of max(|mean|, floor); floor keeps
 * near-zero metrics (an idle CPU at 0.3%) from trending on noise.
 */
export function seriesStats(
  points: { at: number; value: number | null | undefined }[],
  floor = 1,
  tolerance = 0.1,
): SeriesStats {
  const pts = points.filter(
    (p): p is { at: number; value: number } => typeof p.value === 'number' && Number.isFinite(p.value),
  );
  if (pts.length === 0)
    return { count: 0, min: null, avg: null, max: null, last: null, slope_per_min: null, change: null, trend: 'flat' };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const p of pts) {
    min = Math.min(min, p.value);
    max = Math.max(max, p.value);
    sum += p.value;
  }
  const avg = sum / pts.length;
  let slope = 0;
  const span = pts[pts.length - 1]!.at - pts[0]!.at;
  if (pts.length >= 2 && span > 0) {
    const t0 = pts[0]!.at;
    const mt = pts.reduce((s, p) => s + (p.at - t0), 0) / pts.length;
    let num = 0;
    let den = 0;
    for (const p of pts) {
      const dt = p.at - t0 - mt;
      num += dt * (p.value - avg);
      den += dt * dt;
    }
    slope = den > 0 ? num / den : 0; // units per ms
  }
  const change = slope * span;
  const scale = Math.max(Math.abs(avg), floor);
  const trend: Trend = change > tolerance * scale ? 'up' : change < -tolerance * scale ? 'down' : 'flat';
  const r = (v: number): number => Math.round(v * 10_000) / 10_000;
  return {
    count: pts.length,
    min: r(min),
    avg: r(avg),
    max: r(max),
    last: r(pts[pts.length - 1]!.value),
    slope_per_min: r(slope * 60_000),
    change: r(change),
    trend,
  };
}

/** Averages rows into at most `maxPoints` equal time buckets (numeric fields only; nulls skipped). */
export function downsample<T extends { at: number }>(rows: T[], maxPoints: number, start: number, end: number): T[] {
  if (rows.length <= maxPoints || maxPoints < 1) return rows;
  const width = Math.max(1, (end - start) / maxPoints);
  const buckets = new Map<number, T[]>();
  for (const r of rows) {
    const b = Math.min(maxPoints - 1, Math.floor((r.at - start) / width));
    let list = buckets.get(b);
    if (!list) buckets.set(b, (list = []));
    list.push(r);
  }
  const out: T[] = [];
  for (const [, list] of [...buckets.entries()].sort((a, b) => a[0] - b[0])) {
    const merged: Record<string, unknown> = { ...list[list.length - 1]! };
    for (const key of Object.keys(merged)) {
      if (key === 'at') continue;
      const vals = list.map((r) => (r as Record<string, unknown>)[key]).filter((v) => v !== null && v !== undefined);
      if (vals.length > 0 && vals.every((v) => typeof v === 'number')) {
        merged[key] = Math.round(((vals as number[]).reduce((s, v) => s + v, 0) / vals.length) * 1000) / 1000;
      }
    }
    out.push(merged as T);
  }
  return out;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
export const MAX_WINDOW_MS = 90 * 86_400_000;

/** "90s", "15m", "1h", "7d", "1w" or a number of seconds, to milliseconds. */
export function parseWindow(raw: unknown, fallback = '1h'): number {
  // Query values reach here unchecked: a repeated key (?window=1h&window=2h) is an array, and
  // calling .trim() on it was a TypeError, i.e. a 500 (found by test/fuzz.test.ts).
  if (raw !== undefined && typeof raw !== 'string')
    throw new IsoError('INVALID_REQUEST', 'window must be given once, as text such as 30s, 15m, 1h or 7d');
  const text = (raw ?? fallback).trim();
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/i.exec(text);
  if (!m)
    throw new IsoError(
      'INVALID_REQUEST',
      `window must look like 30s, 15m, 1h, 7d or a number of seconds (got "${text.slice(0, 40)}")`,
    );
  const ms = Number(m[1]) * UNITS[(m[2] || 's').toLowerCase()]!;
  if (!(ms >= 1000) || ms > MAX_WINDOW_MS)
    throw new IsoError('INVALID_REQUEST', `window must be between 1s and 90d (got "${text}")`);
  return Math.round(ms);
}

export function formatWindow(ms: number): string {
  for (const [u, f] of [
    ['w', UNITS.w!],
    ['d', UNITS.d!],
    ['h', UNITS.h!],
    ['m', UNITS.m!],
  ] as const)
    if (ms % f === 0) return `${ms / f}${u}`;
  return `${Math.round(ms / 1000)}s`;
}

export const iso = (ms: number | null | undefined): string | null =>
  typeof ms === 'number' ? new Date(ms).toISOString() : null;
