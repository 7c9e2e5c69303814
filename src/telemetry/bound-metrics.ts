// Counters and histograms for the request path, with each label set bound once. prom-client
// hashes the label object on every inc()/observe(), its labels() children included: several
// of those per request were a visible share of a no-op prediction's gateway time. These keep a
// plain record per label set, and give prom-client's Registry the same exposition objects its
// own metrics give (get(), reset()), so they scrape, format and lint like any other metric.
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  /** Histograms: observations per bucket (not cumulative; summed at scrape time). */
  buckets: Float64Array;
  sum: number;
  count: number;
}

interface ExpositionValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

abstract class BoundMetric {
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';
  protected readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    protected readonly labelNames: readonly string[],
    registry: Registry,
    private readonly bucketCount: number,
  ) {
    // The Registry needs only name, help, type, get() and reset() of a metric.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for one label set (created at zero on first use). */
  protected seriesFor(labels: Labels): Series {
    for (const n of Object.keys(labels))
      if (!this.labelNames.includes(n)) throw new Error(`${this.name}: unknown label ${n}`);
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      s = { labels: { ...labels }, buckets: new Float64Array(this.bucketCount), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  /** Zeroes every series in place: functions bound earlier keep counting into them. */
  reset(): void {
    for (const s of this.series.values()) {
      s.buckets.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }

  protected abstract values(): ExpositionValue[];

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExpositionValue[] }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.values(),
    });
  }
}

export class BoundCounter extends BoundMetric {
  readonly type = 'counter';

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; registry: Registry }) {
    super(opts.name, opts.help, opts.labelNames, opts.registry, 0);
  }

  /** An increment function for one label set. */
  bind(labels: Labels): (by?: number) => void {
    const s = this.seriesFor(labels);
    return (by = 1) => {
      s.sum += by;
    };
  }

  protected values(): ExpositionValue[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.sum }));
  }
}

export class BoundHistogram extends BoundMetric {
  readonly type = 'histogram';

  private readonly upperBounds: readonly number[];

  constructor(opts: {
    name: string;
    help: string;
    labelNames: readonly string[];
    registry: Registry;
    buckets: readonly number[];
  }) {
    if (opts.labelNames.includes('le')) throw new Error('le is a reserved label name');
    super(opts.name, opts.help, opts.labelNames, opts.registry, opts.buckets.length);
    this.upperBounds = [...opts.buckets].sort((a, b) => a - b);
  }

  /** An observe function for one label set. */
  bind(labels: Labels): (value: number) => void {
    const s = this.seriesFor(labels);
    const bounds = this.upperBounds;
    return (v) => {
      if (!Number.isFinite(v)) return;
      let i = 0;
      while (i < bounds.length && v > bounds[i]!) i++;
      if (i < bounds.length) s.buckets[i]!++;
      s.sum += v;
      s.count++;
    };
  }

  protected values(): ExpositionValue[] {
    // The same values, labels and order as prom-client's own Histogram (le first).
    const out: ExpositionValue[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.upperBounds.forEach((le, i) => {
        cumulative += s.buckets[i]!;
        out.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      out.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      out.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      out.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}
