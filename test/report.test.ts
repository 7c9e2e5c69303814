// Performance reports and benchmark comparisons through a real gateway: percentiles checked
// against the requests actually made, persisted snapshots, the self-contained HTML page, and
// the `isomodel report` / `isomodel bench --compare` commands as a user runs them.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { PACKAGE_ROOT } from '../src/paths.js';
import { percentileSorted } from '../src/telemetry/series.js';
import { startGateway, waitFor, type Harness } from './helpers.js';

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');

/** Only the SVG namespace may mention a URL scheme: nothing is loaded from anywhere. */
function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /\ssrc\s*=/i);
  assert.doesNotMatch(html, /<link/i);
  assert.doesNotMatch(html, /@import|url\(/i);
  const urls = html.match(/https?:\/\/[^"'\s<)]+/g) ?? [];
  assert.deepEqual([...new Set(urls)], urls.length ? ['http://www.w3.org/2000/svg'] : []);
}

describe('performance reports', () => {
  let h: Harness;
  let work: string;
  const cli = (...args: string[]) =>
    run(process.execPath, [BIN, ...args], {
      cwd: work,
      env: { ...process.env, ISOMODEL_URL: h.url },
      maxBuffer: 16 * 1024 * 1024,
    });
  const clientMs: number[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'isomodel-report-'));
    h = await startGateway(['revcomp', 'gc-scanner', 'chaos-py'], {
      monitor: { interval_ms: 200, perf_interval_ms: 400 },
    });
    // 20 sequential requests, one in four sleeping 300 ms in the worker, and 3 invalid ones.
    for (let i = 0; i < 20; i++) {
      const slow = i % 4 === 3;
      const t0 = performance.now();
      const r = await h.post('/models/chaos-py/predict', {
        sequence: 'ACGTACGT',
        options: slow ? { action: 'sleep', seconds: 0.3 } : {},
      });
      clientMs.push(performance.now() - t0);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    for (let i = 0; i < 3; i++)
      assert.equal((await h.post('/models/chaos-py/predict', { sequence: 'ACGTXZ' })).status, 400);
  });
  after(async () => {
    await h?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('reports percentiles, error rate and throughput consistent with the requests made', async () => {
    const r = await h.get('/v1/reports/chaos-py?window=10m');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const rep = r.body.data;
    assert.equal(rep.kind, 'isomodel.report');
    assert.equal(rep.window.seconds, 600);
    const t = rep.totals;
    assert.equal(t.requests, 23);
    assert.equal(t.successful, 20);
    assert.equal(t.failed, 3);
    assert.equal(t.error_rate, Math.round((3 / 23) * 1000) / 1000);
    assert.deepEqual(t.errors_by_code, { INVALID_SEQUENCE: 3 });
    // 15 fast, 5 slow: the median is fast, p90 and p99 are the 300 ms sleeps.
    assert.ok(t.latency_ms.p50 < 250, `p50 ${t.latency_ms.p50}`);
    assert.ok(t.latency_ms.p90 >= 300, `p90 ${t.latency_ms.p90}`);
    assert.ok(t.latency_ms.p99 >= 300 && t.latency_ms.max >= t.latency_ms.p99);
    assert.ok(t.latency_ms.min <= t.latency_ms.p50 && t.latency_ms.p50 <= t.latency_ms.p90);
    // Exactly the nearest-rank percentiles of the request log's latencies.
    const db = new Database(join(h.stateDir, 'isomodel.db'), { readonly: true });
    const logged = (
      db.prepare(`SELECT latency_ms FROM request_log WHERE model = 'chaos-py' AND status = 'success'`).all() as {
        latency_ms: number;
      }[]
    )
      .map((x) => x.latency_ms)
      .sort((a, b) => a - b);
    db.close();
    assert.equal(logged.length, 20);
    for (const p of [50, 90, 99] as const)
      assert.equal(t.latency_ms[`p${p}`], Math.round(percentileSorted(logged, p)! * 1000) / 1000);
    // The gateway's latency is part of what the client waited for.
    const client = [...clientMs].sort((a, b) => a - b);
    assert.ok(t.latency_ms.p50 <= percentileSorted(client, 50)! + 1);
    assert.ok(t.latency_ms.max <= client[client.length - 1]! + 1);
    // Throughput: 23 requests over the span they took (at least 5 × 300 ms), and over the window.
    assert.ok(t.active_rps > 0 && t.active_rps < 23 / 1.5, `active ${t.active_rps}`);
    assert.equal(t.window_rps, Math.round((23 / 600) * 1000) / 1000);

    assert.equal(rep.versions.length, 1);
    assert.equal(rep.versions[0].version, '0.0.1');
    assert.deepEqual(
      rep.versions[0].tasks.map((x: any) => [x.task, x.requests]),
      [['chaos', 23]],
    );
    const hist = rep.histogram as { le_ms: number | null; count: number }[];
    assert.equal(
      hist.reduce((n, b) => n + b.count, 0),
      20,
    );
    let lower = 0;
    for (const b of hist) {
      const upper = b.le_ms ?? Infinity;
      assert.equal(b.count, logged.filter((v) => v > lower && v <= upper).length, `bucket ≤${upper}`);
      lower = upper;
    }
    assert.ok(
      hist.filter((b) => b.le_ms === null || b.le_ms > 300).reduce((n, b) => n + b.count, 0) >= 5,
      'the five 300 ms sleeps',
    );
    assert.equal(
      rep.series.points.reduce((n: number, p: any) => n + p.requests, 0),
      23,
    );
    assert.equal(
      rep.series.points.reduce((n: number, p: any) => n + p.errors, 0),
      3,
    );
    assert.ok(rep.resources.samples > 0);
    assert.ok(rep.resources.rss_bytes.max > 1024 * 1024);
    assert.equal(rep.current.status, 'ready');
  });

  it('persists periodic snapshots per model and version', async () => {
    const snaps = (await waitFor(async () => {
      const s = (await h.get('/v1/reports/chaos-py?window=10m')).body.data.snapshots as any[];
      return s.reduce((n, x) => n + x.requests, 0) === 23 ? s : null;
    }, 10_000))!;
    assert.ok(snaps.every((s) => s.model === 'chaos-py' && s.version === '0.0.1'));
    assert.equal(
      snaps.reduce((n, s) => n + s.failed, 0),
      3,
    );
    assert.ok(snaps.some((s) => s.latency_p99_ms >= 300));
    assert.ok(
      snaps.some((s) => s.rss_max_bytes > 0),
      'snapshots carry the monitor’s resource samples',
    );
    const db = new Database(join(h.stateDir, 'isomodel.db'), { readonly: true });
    const n = (db.prepare(`SELECT COUNT(*) AS n FROM perf_snapshots WHERE model = 'chaos-py'`).get() as { n: number })
      .n;
    db.close();
    assert.equal(n, snaps.length);
  });

  it('renders a self-contained HTML page with inline SVG charts', async () => {
    const res = await fetch(`${h.url}/v1/reports/chaos-py?window=10m&format=html`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    assert.match(res.headers.get('content-security-policy')!, /default-src 'none'/);
    const html = await res.text();
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /Performance report: chaos-py/);
    for (const id of ['chart-latency', 'chart-throughput', 'chart-histogram', 'chart-cpu', 'chart-memory'])
      assert.match(html, new RegExp(`<svg[^>]+id="${id}"`));
    assert.match(html, /<path d="M/);
    assert.match(html, /INVALID_SEQUENCE/);
    assertSelfContained(html);
  });

  it('answers errors with the envelope', async () => {
    assert.equal((await h.get('/v1/reports/nope')).body.error.code, 'MODEL_NOT_FOUND');
    assert.equal((await h.get('/v1/reports/chaos-py?window=soon')).status, 400);
    assert.equal((await h.get('/v1/reports/chaos-py?format=pdf')).status, 400);
    // A model with no traffic still gets a report (zeros, no percentiles).
    const empty = (await h.get('/v1/reports/gc-scanner?window=1h')).body.data;
    assert.equal(empty.totals.requests, 0);
    assert.equal(empty.totals.latency_ms.p50, null);
  });

  it('isomodel report prints JSON and writes HTML from a running gateway', async () => {
    const { stdout } = await cli('report', 'chaos-py', '--window', '10m');
    const rep = JSON.parse(stdout);
    assert.equal(rep.totals.requests, 23);
    const out = join(work, 'chaos.html');
    const html = await cli('report', 'chaos-py', '--window', '10m', '--format', 'html', '--out', out, '--url', h.url);
    assert.match(html.stdout, /report written to .*chaos\.html/);
    const page = readFileSync(out, 'utf8');
    assert.match(page, /<svg/);
    assertSelfContained(page);
    await assert.rejects(
      run(process.execPath, [BIN, 'report', 'chaos-py', '--url', 'http://127.0.0.1:9'], { cwd: work }),
      /no gateway answers at http:\/\/127\.0\.0\.1:9/,
    );
    await assert.rejects(cli('report', 'nope'), /MODEL_NOT_FOUND/);
  });

  it('isomodel report sends ISOMODEL_API_KEY to a gateway with API keys', async () => {
    const KEY = 'isomodel-report-test-key';
    const keyed = await startGateway(['revcomp'], {
      auth: {
        keys: [{ name: 'reporter', sha256: createHash('sha256').update(KEY).digest('hex'), scopes: ['predict'] }],
      },
    });
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, ISOMODEL_URL: keyed.url };
      delete env.ISOMODEL_API_KEY;
      await assert.rejects(run(process.execPath, [BIN, 'report', 'revcomp'], { cwd: work, env }), /UNAUTHORIZED/);
      const { stdout } = await run(process.execPath, [BIN, 'report', 'revcomp'], {
        cwd: work,
        env: { ...env, ISOMODEL_API_KEY: KEY },
      });
      assert.equal(JSON.parse(stdout).model, 'revcomp');
    } finally {
      await keyed.close();
    }
  });

  it('isomodel bench --compare drives the same workload at two models and saves JSON + HTML', async () => {
    const prefix = join(work, 'cmp');
    const { stdout, stderr } = await cli(
      'bench',
      '--compare',
      'revcomp',
      'gc-scanner',
      '--requests',
      '40',
      '--concurrency',
      '4',
      '--warmup',
      '2',
      '--length',
      '120',
      '--out',
      prefix,
      '--json',
    );
    const c = JSON.parse(stdout);
    assert.equal(c.kind, 'isomodel.bench-compare');
    assert.match(stderr, /saved .*cmp\.json/);
    assert.deepEqual(
      c.runs.map((r: any) => [r.target, r.version, r.task, r.requests, r.successful]),
      [
        ['revcomp', '1.0.0', 'reverse_complement', 40, 40],
        ['gc-scanner', '1.0.0', 'gc_content', 40, 40],
      ],
    );
    assert.equal(c.workload.sequences, 64);
    assert.equal(c.workload.min_length, 120);
    for (const r of c.runs) {
      assert.ok(r.latency_ms.p50 > 0 && r.latency_ms.p50 <= r.latency_ms.p90 && r.latency_ms.p90 <= r.latency_ms.p99);
      assert.equal(
        r.histogram.reduce((n: number, b: any) => n + b.count, 0),
        40,
      );
      assert.equal(r.cdf.length, 101);
      assert.ok(r.throughput_rps > 0);
    }
    assert.equal(c.ratios.p50, Math.round((c.runs[1].latency_ms.p50 / c.runs[0].latency_ms.p50) * 1000) / 1000);
    assert.ok([c.runs[0].target, c.runs[1].target].includes(c.winner.throughput));
    assert.deepEqual(
      JSON.parse(readFileSync(`${prefix}.json`, 'utf8')).runs.map((r: any) => r.requests),
      [40, 40],
    );
    const html = readFileSync(`${prefix}.html`, 'utf8');
    for (const id of ['chart-percentiles', 'chart-throughput', 'chart-cdf', 'chart-histogram'])
      assert.match(html, new RegExp(`id="${id}"`));
    assertSelfContained(html);
    // Through the gateway: each model's request log holds the warm-up and the measured requests.
    const rev = (await h.get('/v1/reports/revcomp?window=10m')).body.data.totals;
    assert.equal(rev.requests, 42);
  });

  it('bench compares two runs of one model on a FASTA workload and prints the side-by-side table', async () => {
    const fasta = join(work, 'w.fasta');
    writeFileSync(fasta, '>a\nACGTACGTAC\n>b\nGGGGCCCCAAAATTTT\n>c\nATG\n');
    const { stdout } = await cli(
      'bench',
      '--compare',
      'revcomp@1.0.0',
      'revcomp',
      '-n',
      '12',
      '--concurrency',
      '2',
      '--warmup',
      '0',
      '--sequence-file',
      fasta,
      '--out',
      join(work, 'same'),
    );
    assert.match(stdout, /workload: 12 requests, concurrency 2, 3 sequence\(s\) from .*w\.fasta \(length 3–16\)/);
    assert.match(stdout, /^METRIC\s+revcomp@1\.0\.0\s+revcomp\s+b\/a$/m);
    assert.match(stdout, /^latency p99\s+/m);
    assert.match(stdout, /^requests\s+12\s+12/m);
    assert.ok(existsSync(join(work, 'same.html')));
    await assert.rejects(
      cli('bench', '--compare', 'revcomp@9.9.9', 'gc-scanner', '-n', '1'),
      /serves revcomp version 1\.0\.0, not 9\.9\.9/,
    );
    await assert.rejects(cli('bench', '--compare', 'revcomp'), /exactly two targets/);
  });
});
