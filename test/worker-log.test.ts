// Worker stderr is bounded per replica (src/worker/log-limiter.ts): a token bucket of lines per
// second with a burst decides what reaches the gateway's log, lines are cut to a maximum length,
// and a line with no newline holds no more than that. A model that prints 100,000 lines, or
// megabytes without a newline, used to grow the gateway's log by 111 MB and its RSS by 280 MB.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { findBwrap } from '../src/drivers/sandbox.js';
import { Gateway } from '../src/gateway.js';
import { TRUNCATED_MARK, WorkerLogLimiter, type WorkerLogLimits } from '../src/worker/log-limiter.js';
import type { SessionWorker } from '../src/worker/session.js';
import { dockerdUnavailable, makeBaseImage, removeAllContainers, startDockerd, type Engine } from './dockerd.js';
import { makeModelsDir, request, waitFor, type Res } from './helpers.js';
import { LONG_SKIP } from './long.js';

/** A limiter on a clock the test moves, recording what it passes on. */
function limiterOnClock(limits: Partial<WorkerLogLimits>) {
  let t = 0;
  const lines: { line: string; logged: boolean }[] = [];
  const reports: { dropped: number; seconds: number }[] = [];
  let droppedCount = 0;
  let truncatedCount = 0;
  const limiter = new WorkerLogLimiter(
    {
      line: (line, logged) => lines.push({ line, logged }),
      report: (dropped, seconds) => reports.push({ dropped, seconds }),
    },
    { limits, onDropped: (n) => (droppedCount += n), onTruncated: (n) => (truncatedCount += n) },
    () => t,
  );
  return {
    limiter,
    lines,
    reports,
    logged: () => lines.filter((l) => l.logged).length,
    dropped: () => droppedCount,
    truncated: () => truncatedCount,
    advance: (ms: number) => (t += ms),
  };
}

describe('worker log limiter', () => {
  it('lets a burst through, then the rate; drops the rest and counts every one', () => {
    const c = limiterOnClock({ lines_per_second: 10, burst: 5, max_line_chars: 100, report_interval_ms: 60_000 });
    c.limiter.push(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''));
    assert.equal(c.logged(), 5);
    assert.equal(c.dropped(), 95);
    // One second refills 10 tokens (never more than the burst of 5 at once).
    c.advance(1000);
    c.limiter.push(Array.from({ length: 20 }, (_, i) => `more ${i}\n`).join(''));
    assert.equal(c.logged(), 10);
    c.advance(300);
    c.limiter.push('a\nb\nc\nd\n');
    assert.equal(c.logged(), 13, '0.3 s at 10 lines/s is 3 lines');
    // Every line is passed on (for the replica's bounded tail), logged or not: nothing is lost from the count.
    assert.equal(c.lines.length, 124);
    assert.equal(c.logged() + c.dropped(), 124);
    assert.deepEqual([c.limiter.logged, c.limiter.dropped], [13, 111]);
  });

  it('reports drops in one line per interval, and the rest at the end of the stream', async () => {
    const reports: number[] = [];
    const limiter = new WorkerLogLimiter(
      { line: () => undefined, report: (n) => reports.push(n) },
      { limits: { lines_per_second: 1, burst: 1, report_interval_ms: 30 } },
    );
    limiter.push('x\n'.repeat(50));
    assert.deepEqual(reports, [], 'not one line per drop');
    await waitFor(() => reports.length === 1, 5000, 5);
    assert.deepEqual(reports, [49]);
    limiter.push('y\n'.repeat(7));
    limiter.end();
    assert.deepEqual(reports, [49, 7]);
  });

  it('cuts long lines and holds no more than max_line_chars while a line has no newline', () => {
    const c = limiterOnClock({ lines_per_second: 1000, burst: 1000, max_line_chars: 100, report_interval_ms: 60_000 });
    c.limiter.push('short\n');
    c.limiter.push(`${'L'.repeat(250)}\nnext\n`);
    assert.deepEqual(
      c.lines.map((l) => l.line),
      ['short', `${'L'.repeat(100)}${TRUNCATED_MARK}`, 'next'],
    );
    // 8 MB without a newline, in pipe-sized chunks: the head goes out once, nothing piles up.
    const block = 'G'.repeat(65536);
    let peak = 0;
    for (let i = 0; i < 128; i++) {
      c.limiter.push(block);
      peak = Math.max(peak, c.limiter.pendingChars);
    }
    assert.ok(peak <= 100, `held ${peak} characters`);
    c.limiter.push('GGG\ntail line\n');
    assert.deepEqual(
      c.lines.slice(3).map((l) => l.line),
      [`${'G'.repeat(100)}${TRUNCATED_MARK}`, 'tail line'],
    );
    assert.equal(c.truncated(), 2);
    // A line split over chunks is one line; blank lines are skipped; the last partial line comes out at the end.
    c.limiter.push('spl');
    c.limiter.push('it\n\n   \nlast');
    c.limiter.end();
    assert.deepEqual(
      c.lines.slice(5).map((l) => l.line),
      ['split', 'last'],
    );
    c.limiter.push('after end\n');
    assert.equal(c.lines.length, 7, 'nothing after end()');
  });

  it('cuts exactly at the limit across chunk boundaries', () => {
    const c = limiterOnClock({ lines_per_second: 1000, burst: 1000, max_line_chars: 100, report_interval_ms: 60_000 });
    c.limiter.push('a'.repeat(60));
    c.limiter.push('a'.repeat(40));
    c.limiter.push('\n');
    c.limiter.push('b'.repeat(60));
    c.limiter.push('b'.repeat(41));
    c.limiter.push('bbb\nc\n');
    assert.deepEqual(
      c.lines.map((l) => l.line),
      ['a'.repeat(100), `${'b'.repeat(100)}${TRUNCATED_MARK}`, 'c'],
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Through a real gateway, with its log captured and counted (never kept).

interface LogCount {
  bytes: number;
  workerLines: number;
  workerLineMaxChars: number;
  reports: number;
  reportedDrops: number;
}

function countingLogger(count: LogCount) {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      count.bytes += chunk.length;
      for (const text of chunk.toString('utf8').split('\n')) {
        if (!text) continue;
        const rec = JSON.parse(text) as { msg?: string; worker_log?: string; worker_log_dropped?: number };
        if (rec.msg === 'worker log') {
          count.workerLines++;
          count.workerLineMaxChars = Math.max(count.workerLineMaxChars, rec.worker_log?.length ?? 0);
        }
        if (typeof rec.worker_log_dropped === 'number') {
          count.reports++;
          count.reportedDrops += rec.worker_log_dropped;
          assert.match(rec.msg ?? '', /^worker log: dropped \d+ lines in the last [\d.]+s/);
        }
      }
      done();
    },
  });
  return pino({ level: 'info' }, stream);
}

const LIMITS = { lines_per_second: 50, burst: 100, max_line_chars: 1000, report_interval_ms: 200 };
const FLOOD = 100_000;

function droppedMetric(text: string, model: string): number {
  const m = new RegExp(`^isomodel_worker_log_dropped_total\\{model="${model}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : -1;
}

for (const isolation of ['process', 'sandbox', 'docker'] as const) {
  // docker: a private engine (test/dockerd.ts), skipped saying why where it cannot run.
  const unavailable = isolation === 'docker' ? LONG_SKIP || dockerdUnavailable() : null;
  describe(`worker stderr through a gateway (isolation ${isolation})`, { skip: unavailable ?? false }, () => {
    const count: LogCount = { bytes: 0, workerLines: 0, workerLineMaxChars: 0, reports: 0, reportedDrops: 0 };
    let gw: Gateway;
    let url: string;
    let modelsDir: string;
    let stateDir: string;
    let engine: Engine | undefined;
    const post = <T = any>(path: string, body: unknown): Promise<Res<T>> => request<T>(url + path, 'POST', body);
    const worker = (): SessionWorker => {
      const dep = gw.registry.deployment('noisy-node') as unknown as { replicas: { worker: SessionWorker }[] };
      return dep.replicas[0]!.worker;
    };

    before(async () => {
      if (isolation === 'sandbox')
        assert.ok(
          findBwrap(),
          'bubblewrap (bwrap) is not installed; the sandbox variant needs it: apt-get install bubblewrap',
        );
      if (isolation === 'docker') {
        engine = await startDockerd();
        makeBaseImage(engine, 'node');
      }
      modelsDir = makeModelsDir(['noisy-node']);
      const yaml = join(modelsDir, 'noisy-node', 'model.yaml');
      writeFileSync(
        yaml,
        readFileSync(yaml, 'utf8').replace('runtime: node', `runtime: node\nisolation: ${isolation}`),
      );
      stateDir = mkdtempSync(join(tmpdir(), 'isomodel-state-'));
      const config = loadConfig({
        cwd: stateDir,
        env: {},
        overrides: {
          host: '127.0.0.1',
          port: 0,
          models_dir: modelsDir,
          state_dir: stateDir,
          watch: false,
          rate_limit: { max: 0 },
          monitor: { enabled: false },
          worker_log: LIMITS,
          ...(engine && { docker: { socket: engine.socket } }),
        },
      });
      gw = new Gateway(config, countingLogger(count));
      await gw.start();
      const { port } = gw.address();
      url = `http://127.0.0.1:${port}`;
      assert.equal(gw.registry.status('noisy-node'), 'ready', gw.registry.lastError('noisy-node'));
    });

    after(async () => {
      await gw?.close();
      if (engine) {
        await removeAllContainers(engine.docker);
        await engine.stop();
      }
      rmSync(modelsDir, { recursive: true, force: true });
      rmSync(stateDir, { recursive: true, force: true });
    });

    it(`keeps the gateway log bounded under ${FLOOD} stderr lines, counts the drops and keeps predicting`, async () => {
      const before = { ...count };
      const t0 = Date.now();
      const r = await post('/models/noisy-node/predict', { sequence: 'ACGT', options: { lines: FLOOD } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.lines, FLOOD);
      // Every line is accounted for: logged, or dropped and counted.
      await waitFor(() => (worker().logStats()?.logged ?? 0) + (worker().logStats()?.dropped ?? 0) >= FLOOD, 60_000);
      const elapsedS = (Date.now() - t0) / 1000;
      const stats = worker().logStats()!;
      assert.equal(stats.logged + stats.dropped, FLOOD);
      const logged = count.workerLines - before.workerLines;
      assert.equal(logged, stats.logged);
      // At most the burst plus the rate over the time it took (an upper bound, not a speed).
      assert.ok(
        logged <= LIMITS.burst + LIMITS.lines_per_second * elapsedS + 1,
        `${logged} lines logged in ${elapsedS} s`,
      );
      assert.ok(stats.dropped >= FLOOD - logged && stats.dropped > 90_000, `dropped ${stats.dropped}`);
      // Each logged record is one short line: the whole flood cost the log well under a megabyte (it was 111 MB).
      const bytes = count.bytes - before.bytes;
      assert.ok(bytes < 1024 * 1024, `the flood added ${bytes} bytes of gateway log`);

      // The Prometheus counter and the periodic report lines say the same number.
      const prom = await request<string>(`${url}/metrics/prometheus`, 'GET');
      assert.equal(droppedMetric(prom.body, 'noisy-node'), stats.dropped);
      await waitFor(() => count.reportedDrops - before.reportedDrops === stats.dropped, 10_000);
      const reports = count.reports - before.reports;
      assert.ok(
        reports >= 1 && reports <= Math.ceil((elapsedS * 1000 + 500) / LIMITS.report_interval_ms) + 1,
        `${reports} report lines`,
      );

      // The replica still answers.
      const again = await post('/models/noisy-node/predict', { sequence: 'ACGTACGT' });
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.data.length, 8);
    });

    it('holds at most max_line_chars of a giant line, with or without its newline', async () => {
      // 24 MB in one line, newline-terminated: one cut line in the log and in the tail.
      const r = await post('/models/noisy-node/predict', { sequence: 'ACGT', options: { giant_mb: 24 } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await waitFor(() => worker().recentLog().includes('after the giant line'), 30_000);
      const tail = worker().recentLog();
      assert.ok(tail.includes(`${'G'.repeat(LIMITS.max_line_chars)}${TRUNCATED_MARK}`));
      assert.ok(tail.every((l) => l.length <= LIMITS.max_line_chars + TRUNCATED_MARK.length));
      assert.ok(
        count.workerLineMaxChars <= LIMITS.max_line_chars + TRUNCATED_MARK.length,
        `a ${count.workerLineMaxChars}-character log record`,
      );

      // 24 MB that never ends its line: the reader holds no more than the limit.
      const truncatedBefore = worker().logStats()!.truncated;
      const open = await post('/models/noisy-node/predict', {
        sequence: 'ACGT',
        options: { giant_mb: 24, end_line: false },
      });
      assert.equal(open.status, 200, JSON.stringify(open.body));
      await waitFor(() => worker().logStats()!.truncated === truncatedBefore + 1, 30_000);
      assert.ok(
        worker().logStats()!.pending_chars <= LIMITS.max_line_chars,
        `holds ${worker().logStats()!.pending_chars} characters`,
      );
      const ok = await post('/models/noisy-node/predict', { sequence: 'AC' });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.data.length, 2);
    });
  });
}
