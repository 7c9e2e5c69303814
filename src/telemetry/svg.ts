// Inline SVG charts for the self-contained HTML reports: line charts (time or numeric x, gaps
// for missing values, optional log x) and grouped bar charts. No external script or font.
export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round tick values spanning [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0];
  if (max === min) {
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.5 : 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => raw <= s) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  if (out[out.length - 1]! < max) out.push(out[out.length - 1]! + step);
  return out;
}

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(a >= 1e10 ? 0 : 1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100 || v === 0) return v.toFixed(0);
  if (a >= 1) return String(Math.round(v * 100) / 100);
  return String(Number(v.toPrecision(2)));
}

export function formatTime(ms: number, spanMs: number): string {
  const s = new Date(ms).toISOString();
  return spanMs > 86_400_000 ? `${s.slice(5, 10)} ${s.slice(11, 16)}` : s.slice(11, spanMs > 3_600_000 ? 16 : 19);
}

export interface LineSeries {
  name: string;
  color?: string;
  dashed?: boolean;
  points: { x: number; y: number | null }[];
}

export interface LineChartOptions {
  title: string;
  series: LineSeries[];
  width?: number;
  height?: number;
  /** 'time': x is epoch milliseconds, labelled in UTC. */
  xType?: 'time' | 'linear' | 'log';
  xLabel?: string;
  yLabel?: string;
  yMin?: number;
  yMax?: number;
  formatY?: (v: number) => string;
  formatX?: (v: number) => string;
  /** Draws dots on each point (short series). */
  dots?: boolean;
  id?: string;
}

const M = { left: 58, right: 16, top: 34, bottom: 44 };

function frame(
  o: { title: string; width: number; height: number; id?: string },
  inner: string,
  legend: { name: string; color: string; dashed?: boolean }[],
): string {
  let lx = M.left;
  const items = legend
    .map((l) => {
      const x = lx;
      lx += 26 + l.name.length * 6.6 + 14;
      return `<g transform="translate(${x.toFixed(1)},${o.height - 12})"><line x1="0" y1="-4" x2="20" y2="-4" stroke="${l.color}" stroke-width="2.5"${l.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="25" y="0" class="lg">${escapeXml(l.name)}</text></g>`;
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"${o.id ? ` id="${escapeXml(o.id)}"` : ''} viewBox="0 0 ${o.width} ${o.height}" width="${o.width}" height="${o.height}" font-family="system-ui, sans-serif" font-size="11">` +
    `<title>${escapeXml(o.title)}</title><style>.lg{fill:#374151}.ax{fill:#6b7280}.gr{stroke:#e5e7eb}.tt{fill:#111827;font-weight:600;font-size:13px}</style>` +
    `<rect x="0" y="0" width="${o.width}" height="${o.height}" fill="#fff"/>` +
    `<text x="${M.left}" y="18" class="tt">${escapeXml(o.title)}</text>${inner}${items}</svg>`
  );
}

function noData(o: { title: string; width: number; height: number; id?: string }): string {
  return frame(
    o,
    `<text x="${o.width / 2}" y="${o.height / 2}" text-anchor="middle" class="ax">no data in this window</text>`,
    [],
  );
}

export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 680;
  const height = opts.height ?? 240;
  const o = { title: opts.title, width, height, id: opts.id };
  const log = opts.xType === 'log';
  const pts = opts.series.flatMap((s) =>
    s.points.filter((p) => p.y !== null && Number.isFinite(p.y) && (!log || p.x > 0)),
  );
  if (pts.length === 0) return noData(o);
  const tx = (x: number): number => (log ? Math.log10(x) : x);
  let xmin = Math.min(...pts.map((p) => tx(p.x)));
  let xmax = Math.max(...pts.map((p) => tx(p.x)));
  if (xmax === xmin) {
    xmin -= 1;
    xmax += 1;
  }
  const ys = pts.map((p) => p.y!);
  const yTicks = niceTicks(opts.yMin ?? Math.min(0, ...ys), opts.yMax ?? Math.max(...ys));
  const ymin = yTicks[0]!;
  const ymax = yTicks[yTicks.length - 1]!;
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;
  const X = (x: number): number => M.left + ((tx(x) - xmin) / (xmax - xmin)) * pw;
  const Y = (y: number): number => M.top + ph - ((y - ymin) / (ymax - ymin || 1)) * ph;
  const fy = opts.formatY ?? formatNumber;
  let inner = '';
  for (const t of yTicks)
    inner += `<line x1="${M.left}" x2="${width - M.right}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" class="gr"/><text x="${M.left - 6}" y="${(Y(t) + 3.5).toFixed(1)}" text-anchor="end" class="ax">${escapeXml(fy(t))}</text>`;
  // x ticks: 5 evenly spaced (log: decades).
  const fx = opts.formatX ?? ((v: number) => (opts.xType === 'time' ? formatTime(v, xmax - xmin) : formatNumber(v)));
  const xTicks: number[] = [];
  if (log) for (let e = Math.ceil(xmin); e <= Math.floor(xmax); e++) xTicks.push(10 ** e);
  else for (let i = 0; i <= 4; i++) xTicks.push(xmin + ((xmax - xmin) * i) / 4);
  xTicks.forEach((t, i) => {
    // The outermost labels hug the plot's edges so they are never cut off.
    const anchor =
      xTicks.length > 1 && i === 0 ? 'start' : xTicks.length > 1 && i === xTicks.length - 1 ? 'end' : 'middle';
    inner += `<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${M.top}" y2="${M.top + ph}" class="gr"/><text x="${X(t).toFixed(1)}" y="${M.top + ph + 14}" text-anchor="${anchor}" class="ax">${escapeXml(fx(t))}</text>`;
  });
  inner += `<line x1="${M.left}" x2="${width - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#9ca3af"/>`;
  if (opts.yLabel)
    inner += `<text x="${width - M.right}" y="${M.top - 6}" text-anchor="end" class="ax">${escapeXml(opts.yLabel)}</text>`;
  if (opts.xLabel)
    inner += `<text x="${width - M.right}" y="${M.top + ph + 28}" text-anchor="end" class="ax">${escapeXml(opts.xLabel)}</text>`;
  const legend: { name: string; color: string; dashed?: boolean }[] = [];
  opts.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    legend.push({ name: s.name, color, dashed: s.dashed });
    let d = '';
    let pen = false;
    for (const p of s.points) {
      if (p.y === null || !Number.isFinite(p.y) || (log && p.x <= 0)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`;
      pen = true;
    }
    if (d)
      inner += `<path d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"${s.dashed ? ' stroke-dasharray="5 3"' : ''}><title>${escapeXml(s.name)}</title></path>`;
    if (opts.dots || s.points.length <= 40) {
      for (const p of s.points)
        if (p.y !== null && Number.isFinite(p.y) && (!log || p.x > 0))
          inner += `<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="2.2" fill="${color}"><title>${escapeXml(`${s.name}: ${fy(p.y)}`)}</title></circle>`;
    }
  });
  return frame(o, inner, legend);
}

export interface BarChartOptions {
  title: string;
  categories: string[];
  series: { name: string; color?: string; values: (number | null)[] }[];
  width?: number;
  height?: number;
  yLabel?: string;
  formatY?: (v: number) => string;
  id?: string;
}

export function barChart(opts: BarChartOptions): string {
  const width = opts.width ?? 680;
  const height = opts.height ?? 240;
  const o = { title: opts.title, width, height, id: opts.id };
  const vals = opts.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  if (vals.length === 0 || opts.categories.length === 0) return noData(o);
  const yTicks = niceTicks(Math.min(0, ...vals), Math.max(...vals));
  const ymin = yTicks[0]!;
  const ymax = yTicks[yTicks.length - 1]!;
  const pw = width - M.left - M.right;
  const ph = height - M.top - M.bottom;
  const Y = (y: number): number => M.top + ph - ((y - ymin) / (ymax - ymin || 1)) * ph;
  const fy = opts.formatY ?? formatNumber;
  let inner = '';
  for (const t of yTicks)
    inner += `<line x1="${M.left}" x2="${width - M.right}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" class="gr"/><text x="${M.left - 6}" y="${(Y(t) + 3.5).toFixed(1)}" text-anchor="end" class="ax">${escapeXml(fy(t))}</text>`;
  const groupW = pw / opts.categories.length;
  const barW = Math.max(2, (groupW * 0.8) / opts.series.length);
  opts.categories.forEach((c, ci) => {
    const gx = M.left + ci * groupW + groupW * 0.1;
    inner += `<text x="${(M.left + ci * groupW + groupW / 2).toFixed(1)}" y="${M.top + ph + 14}" text-anchor="middle" class="ax">${escapeXml(c)}</text>`;
    opts.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const color = s.color ?? PALETTE[si % PALETTE.length]!;
      const y0 = Y(Math.max(ymin, 0));
      const y1 = Y(v);
      inner += `<rect x="${(gx + si * barW).toFixed(1)}" y="${Math.min(y0, y1).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${Math.max(0.5, Math.abs(y0 - y1)).toFixed(1)}" fill="${color}"><title>${escapeXml(`${s.name} ${c}: ${fy(v)}`)}</title></rect>`;
      if (barW >= 18)
        inner += `<text x="${(gx + si * barW + (barW - 1) / 2).toFixed(1)}" y="${(Math.min(y0, y1) - 3).toFixed(1)}" text-anchor="middle" class="ax" font-size="9">${escapeXml(fy(v))}</text>`;
    });
  });
  inner += `<line x1="${M.left}" x2="${width - M.right}" y1="${Y(Math.max(ymin, 0)).toFixed(1)}" y2="${Y(Math.max(ymin, 0)).toFixed(1)}" stroke="#9ca3af"/>`;
  if (opts.yLabel)
    inner += `<text x="${width - M.right}" y="${M.top - 6}" text-anchor="end" class="ax">${escapeXml(opts.yLabel)}</text>`;
  return frame(
    o,
    inner,
    opts.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length]! })),
  );
}
