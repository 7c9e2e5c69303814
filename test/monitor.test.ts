// The worker monitor through a real gateway: real /proc numbers, a memory threshold crossed by
// chaos-py's hog (alert fired, worker replaced, alert resolved), webhook delivery with retries
// against a local server that fails the first attempts, runtime thresholds, health alerts,
// history with trends, and everything persisted in SQLite.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pidAlive, startGateway, waitFor, type Harness } from './helpers.js';
import { percentileSorted, seriesStats, summarizeLatencies, parseWindow } from '../src/telemetry/series.js';

interface Hit {
  at: number;
  delivery: string;
  attempt: number;
  event: string;
  body: any;
}

/** A webhook receiver on 127.0.0.1 that answers 503 to the first `failFirst` attempts of each delivery. */
async function webhookServer(failFirst: number): Promise<{ server: Server; url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delivery = String(req.headers['x-isomodel-delivery']);
      const n = (seen.get(delivery) ?? 0) + 1;
      seen.set(delivery, n);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      hits.push({
        at: Date.now(),
        delivery,
        attempt: Number(req.headers['x-isomodel-attempt']),
        event: String(req.headers['x-isomodel-event']),
        body,
      });
      res.statusCode = n <= failFirst ? 503 : 200;
      res.end(n <= failFirst ? 'try again' : 'ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}/hook`, hits };
}

function vmRssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('trend and percentile helpers', () => {
  it('fits a slope: up, down and flat', () => {
    const t0 = 1_000_000;
    const up = seriesStats(Array.from({ length: 10 }, (_, i) => ({ at: t0 + i * 1000, value: 100 + i * 10 })));
    assert.equal(up.trend, 'up');
    assert.equal(up.min, 100);
    assert.equal(up.max, 190);
    assert.equal(up.avg, 145);
    assert.equal(up.slope_per_min, 600); // 10 per second
    assert.equal(
      seriesStats(Array.from({ length: 10 }, (_, i) => ({ at: t0 + i * 1000, value: 100 - i * 5 }))).trend,
      'down',
    );
    // Noise around a level: flat, and a near-zero metric does not trend on tiny wiggles.
    assert.equal(
      seriesStats([100, 101, 99, 100, 101, 99, 100].map((value, i) => ({ at: t0 + i * 1000, value }))).trend,
      'flat',
    );
    assert.equal(
      seriesStats(
        [0.1, 0.2, 0.3, 0.4].map((value, i) => ({ at: t0 + i * 1000, value })),
        5,
      ).trend,
      'flat',
    );
    assert.equal(seriesStats([]).count, 0);
  });

  it('uses nearest-rank percentiles and parses windows', () => {
    const v = Array.from({ length: 20 }, (_, i) => i + 1);
    assert.equal(percentileSorted(v, 50), 10);
    assert.equal(percentileSorted(v, 90), 18);
    assert.equal(percentileSorted(v, 99), 20);
    assert.deepEqual(summarizeLatencies([3, 1, 2]), { count: 3, min: 1, mean: 2, p50: 2, p90: 3, p99: 3, max: 3 });
    assert.equal(parseWindow('15m'), 900_000);
    assert.equal(parseWindow('90'), 90_000);
    assert.throws(() => parseWindow('yesterday'), /window must look like/);
  });
});

describe('worker monitor', () => {
  let h: Harness;
  let hook: Awaited<ReturnType<typeof webhookServer>>;

  before(async () => {
    hook = await webhookServer(2);
    h = await startGateway(['revcomp', 'chaos-py'], {
      monitor: {
        interval_ms: 200,
        alert_after_samples: 2,
        restart_after_samples: 3,
        // CPU is left to its own test below; here a busy CI machine must not raise CPU alerts.
        thresholds: { cpu_percent: 100_000, memory_percent: 90, disk_percent: 100 },
        webhook_url: hook.url,
        webhook_retries: 4,
        webhook_backoff_ms: 100,
      },
    });
    await waitFor(async () => (await h.get('/v1/monitor/summary')).body.data.samples_taken >= 2);
  });
  after(async () => {
    await h?.close();
    hook?.server.close();
  });

  const chaosReplica = async () => (await h.get('/v1/monitor/metrics/chaos-py')).body.data.replicas[0];
  const alerts = async (q = '') => (await h.get(`/v1/monitor/alerts${q}`)).body.data.alerts as any[];

  it('samples every worker with real numbers from /proc', async () => {
    const r = await h.get('/v1/monitor/metrics');
    assert.equal(r.status, 200);
    const chaos = r.body.data.models.find((m: any) => m.model === 'chaos-py');
    assert.equal(chaos.status, 'ready');
    assert.equal(chaos.limits.memory_bytes, 128 * 1024 * 1024);
    const rep = chaos.replicas[0];
    assert.ok(pidAlive(rep.pid), 'the sampled pid is a live worker');
    const actual = vmRssBytes(rep.pid);
    assert.ok(rep.rss_bytes > 2 * 1024 * 1024, `rss ${rep.rss_bytes}`);
    // The worker's own sample (every 250 ms) and /proc now agree within a few MB (or the cgroup's count, which includes page cache).
    assert.ok(Math.abs(rep.rss_bytes - actual) < 16 * 1024 * 1024, `sampled ${rep.rss_bytes} vs /proc ${actual}`);
    assert.ok(Math.abs(rep.memory_percent - (rep.rss_bytes / (128 * 1024 * 1024)) * 100) < 0.01);
    assert.ok(rep.open_fds >= 3, `open fds ${rep.open_fds}`);
    assert.equal(typeof rep.cpu_percent, 'number');
    // Disk I/O is read from /proc/<pid>/io; there is no per-process network counter: null, never invented.
    assert.ok(rep.io.disk_read_bytes === null || typeof rep.io.disk_read_bytes === 'number');
    assert.equal(rep.io.net_rx_bytes, null);
    assert.equal(rep.io.net_tx_bytes, null);
    assert.equal(typeof r.body.data.system.disk_percent, 'number');
  });

  it('summarises what it watches', async () => {
    const s = (await h.get('/v1/monitor/summary')).body.data;
    assert.equal(s.running, true);
    assert.equal(s.interval_ms, 200);
    assert.equal(s.models_watched, 2);
    assert.equal(s.replicas.total, 2);
    assert.equal(s.total_containers, 2);
    assert.equal(s.active_alerts, 0);
    assert.ok(s.totals.rss_bytes > 0);
    assert.equal(s.webhook.configured, true);
    assert.deepEqual(s.thresholds, { cpu_percent: 100_000, memory_percent: 90, disk_percent: 100 });
  });

  it('fires a memory alert when hog crosses the threshold, replaces the worker, resolves the alert and delivers both webhooks with retries', async () => {
    const put = await h.gw.server!.inject({
      method: 'PUT',
      url: '/v1/monitor/thresholds',
      payload: { memory_percent: 30 },
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().data.memory_percent, 30);
    assert.equal(put.json().data.source, 'runtime');
    const before = await chaosReplica();
    assert.ok(before.memory_percent < 30, `idle worker already at ${before.memory_percent}%`);

    const hog = await h.post('/models/chaos-py/predict', { sequence: 'ACGT', options: { action: 'hog', mb: 48 } });
    assert.equal(hog.status, 200, JSON.stringify(hog.body));

    const fired = await waitFor(async () => (await alerts('?state=all&kind=memory&model=chaos-py'))[0], 10_000);
    assert.equal(fired.replica, before.id);
    assert.equal(fired.threshold, 30);
    assert.ok(fired.value >= 30, `value ${fired.value}`);
    assert.match(
      fired.message,
      /chaos-py replica r\d+ uses [\d.]+ MB, [\d.]+% of its 128\.0 MB memory limit \(threshold 30%\)/,
    );

    // The restart policy replaces the worker that stays over: a new pid, the old one gone.
    const replaced = await waitFor(async () => {
      const r = await chaosReplica();
      return r.pid !== before.pid && r.state === 'ready' ? r : null;
    }, 15_000);
    assert.equal(replaced.id, before.id);
    assert.ok(replaced.restarts > before.restarts);
    await waitFor(() => !pidAlive(before.pid), 5000);

    const resolved = await waitFor(
      async () => (await alerts('?state=resolved&kind=memory&model=chaos-py')).find((a) => a.id === fired.id),
      10_000,
    );
    assert.match(resolved.resolution, /memory back under 30%/);
    assert.deepEqual(
      resolved.history.map((e: any) => e.state),
      ['firing', 'restart_requested', 'resolved'],
      `alert history: ${JSON.stringify(resolved.history)}; events: ${JSON.stringify((await h.get('/v1/monitor/events?model=chaos-py')).body.data.events)}`,
    );
    assert.ok(resolved.peak_value >= fired.value);

    // The replacement is the monitor's doing: state history says so, and no health alert was raised for it.
    const events = (await h.get('/v1/monitor/events?model=chaos-py')).body.data.events;
    assert.ok(
      events.some((e: any) => e.kind === 'restart_requested' && /memory over monitor threshold/.test(e.message)),
    );
    assert.ok(events.some((e: any) => e.kind === 'restart' && /replaced by the monitor/.test(e.message)));
    assert.equal((await alerts('?kind=health&model=chaos-py')).length, 0);
    const prom = await h.get('/metrics/prometheus');
    assert.match(
      prom.body as string,
      /isomodel_worker_restarts_total\{model="chaos-py",version="0\.0\.1",reason="memory over monitor threshold"\} 1/,
    );

    // Webhooks: firing then resolved, each delivered on the third attempt after two 503s, with backoff.
    const deliveries = await waitFor(async () => {
      const d = (await h.get('/v1/monitor/webhooks')).body.data.deliveries.filter((x: any) => x.alert_id === fired.id);
      return d.length === 2 && d.every((x: any) => x.status === 'delivered') ? d : null;
    }, 10_000);
    for (const d of deliveries) {
      assert.equal(d.attempts, 3);
      assert.equal(d.last_status, 200);
    }
    for (const event of ['alert.firing', 'alert.resolved']) {
      const tries = hook.hits.filter((x) => x.event === event && x.body.alert.id === fired.id);
      assert.deepEqual(
        tries.map((x) => x.attempt),
        [1, 2, 3],
        event,
      );
      assert.equal(new Set(tries.map((x) => x.delivery)).size, 1, 'one delivery id across retries');
      assert.ok(tries[1]!.at - tries[0]!.at >= 90, `first backoff ${tries[1]!.at - tries[0]!.at} ms`);
      assert.ok(tries[2]!.at - tries[1]!.at >= 190, `second backoff ${tries[2]!.at - tries[1]!.at} ms`);
      assert.equal(tries[2]!.body.alert.kind, 'memory');
      assert.equal(tries[2]!.body.alert.model, 'chaos-py');
    }
    const firingHit = hook.hits.find((x) => x.event === 'alert.firing' && x.body.alert.id === fired.id)!;
    const resolvedHit = hook.hits.find((x) => x.event === 'alert.resolved' && x.body.alert.id === fired.id)!;
    assert.ok(firingHit.at < resolvedHit.at, 'firing is delivered before resolved');
    assert.equal(resolvedHit.body.alert.state, 'resolved');

    // Back to the configured memory threshold for the tests that follow.
    const reset = await h.gw.server!.inject({ method: 'DELETE', url: '/v1/monitor/thresholds' });
    assert.equal(reset.json().data.source, 'config');
    assert.equal(reset.json().data.memory_percent, 90);
  });

  it('keeps a history with min/avg/max and a trend: memory growing step by step trends up', async () => {
    const t0 = Date.now();
    for (const mb of [16, 16, 16]) {
      const r = await h.post('/models/chaos-py/predict', { sequence: 'ACGT', options: { action: 'hog', mb } });
      assert.equal(r.status, 200);
      await new Promise((res) => setTimeout(res, 700));
    }
    const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
    const hist = (await h.get(`/v1/monitor/history/chaos-py?window=${seconds}s&points=50`)).body.data;
    assert.ok(hist.samples >= 8, `samples ${hist.samples}`);
    assert.ok(hist.series.length <= 50);
    const rss = hist.stats.rss_bytes;
    assert.equal(rss.trend, 'up', JSON.stringify(rss));
    assert.ok(rss.slope_per_min > 0);
    assert.ok(rss.max - rss.min >= 30 * 1024 * 1024, `grew by ${(rss.max - rss.min) / 1048576} MB`);
    assert.ok(rss.min <= rss.avg && rss.avg <= rss.max);
    assert.equal(hist.stats.queue_depth.trend, 'flat');
    assert.equal(hist.replicas.length, 1);

    // The all-models view has every model and the gateway's disk series.
    const all = (await h.get('/v1/monitor/history?window=5m')).body.data;
    assert.deepEqual(
      all.models.map((m: any) => m.model),
      ['chaos-py', 'revcomp'],
    );
    assert.ok(all.system.samples > 0);
    assert.equal(typeof all.system.stats.disk_percent.avg, 'number');
    const revEvents = all.models.find((m: any) => m.model === 'revcomp').events;
    assert.ok(revEvents.some((e: any) => e.kind === 'model' && e.to === 'ready'));
  });

  it('changes thresholds at runtime: a disk alert fires and resolves', async () => {
    const bad = await h.gw.server!.inject({
      method: 'PUT',
      url: '/v1/monitor/thresholds',
      payload: { disk_percent: 200 },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'INVALID_REQUEST');
    const unknown = await h.gw.server!.inject({
      method: 'PUT',
      url: '/v1/monitor/thresholds',
      payload: { gpu_percent: 5 },
    });
    assert.equal(unknown.statusCode, 400);

    const put = await h.gw.server!.inject({
      method: 'PUT',
      url: '/v1/monitor/thresholds',
      payload: { disk_percent: 0.001 },
    });
    assert.equal(put.statusCode, 200);
    const fired = await waitFor(async () => (await alerts('?state=firing&kind=disk'))[0], 5000);
    assert.match(fired.message, /% full \(threshold 0\.001%\)/);
    assert.equal((await h.get('/v1/monitor/summary')).body.data.active_alerts >= 1, true);
    await h.gw.server!.inject({ method: 'PUT', url: '/v1/monitor/thresholds', payload: { disk_percent: 100 } });
    const resolved = await waitFor(
      async () => (await alerts('?state=resolved&kind=disk')).find((a) => a.id === fired.id),
      5000,
    );
    assert.match(resolved.resolution, /disk back under 100%/);
    const got = (await h.get('/v1/monitor/thresholds')).body.data;
    assert.equal(got.disk_percent, 100);
    assert.equal(got.defaults.disk_percent, 100);
  });

  it('raises a health alert when a worker crashes, resolved once it is back', async () => {
    const crash = await h.post('/models/chaos-py/predict', { sequence: 'ACGT', options: { action: 'crash' } });
    assert.equal(crash.status, 500);
    const fired = await waitFor(async () => (await alerts('?kind=health&model=chaos-py'))[0], 5000);
    assert.equal(fired.severity, 'critical');
    assert.match(fired.message, /replica r\d+ (restarted|restarting after)/);
    const resolved = await waitFor(
      async () => (await alerts('?state=resolved&kind=health&model=chaos-py')).find((a) => a.id === fired.id),
      10_000,
    );
    assert.equal(resolved.resolution, 'healthy again');
  });

  it('resolves a model’s alerts when it is unloaded, and watches it again once loaded', async () => {
    await h.gw.server!.inject({
      method: 'PUT',
      url: '/v1/monitor/thresholds',
      payload: { memory_percent: 1, restart_unhealthy: false },
    });
    const fired = await waitFor(async () => (await alerts('?state=firing&kind=memory&model=revcomp'))[0], 5000);
    const un = await h.post('/v1/models/revcomp/unload');
    assert.equal(un.status, 200);
    const resolved = await waitFor(
      async () => (await alerts('?state=resolved&model=revcomp')).find((a) => a.id === fired.id),
      5000,
    );
    assert.match(resolved.resolution, /unloaded|replica/);
    assert.equal((await h.get('/v1/monitor/summary')).body.data.models_watched, 1);
    await h.gw.server!.inject({ method: 'DELETE', url: '/v1/monitor/thresholds' });
    assert.equal((await h.post('/v1/models/revcomp/load')).status, 200);
    await waitFor(async () => (await h.get('/v1/monitor/summary')).body.data.models_watched === 2, 5000);
    // The next sample records the transition in the state history.
    await waitFor(
      async () =>
        (await h.get('/v1/monitor/events?model=revcomp')).body.data.events.find((e: any) => e.kind === 'model')?.to ===
        'ready',
      5000,
    );
  });

  it('keeps alerts, their state history and samples in SQLite', () => {
    const db = new Database(join(h.stateDir, 'isomodel.db'), { readonly: true });
    try {
      const rows = db
        .prepare(
          `SELECT a.kind, e.state FROM monitor_alerts a JOIN monitor_alert_events e ON e.alert_id = a.id ORDER BY e.id`,
        )
        .all() as { kind: string; state: string }[];
      assert.ok(rows.some((r) => r.kind === 'memory' && r.state === 'firing'));
      assert.ok(rows.some((r) => r.kind === 'memory' && r.state === 'resolved'));
      const samples = db
        .prepare(`SELECT COUNT(*) AS n FROM monitor_replica_samples WHERE model = 'chaos-py' AND rss_bytes > 0`)
        .get() as { n: number };
      assert.ok(samples.n > 10);
      const states = db
        .prepare(`SELECT to_state FROM monitor_events WHERE model = 'revcomp' AND kind = 'model' ORDER BY id`)
        .all() as { to_state: string }[];
      assert.deepEqual(
        states
          .map((s) => s.to_state)
          .filter((s) => s !== 'loading' && s !== 'draining')
          .slice(-3),
        ['ready', 'unloaded', 'ready'],
      );
    } finally {
      db.close();
    }
  });

  it('rejects bad queries with the envelope', async () => {
    assert.equal((await h.get('/v1/monitor/history/chaos-py?window=forever')).status, 400);
    assert.equal((await h.get('/v1/monitor/alerts?state=maybe')).status, 400);
    assert.equal((await h.get('/v1/monitor/metrics/nope')).body.error.code, 'MODEL_NOT_FOUND');
  });
});

describe('monitor CPU threshold', () => {
  let h: Harness;
  before(async () => {
    // 5% of one core: an idle worker waiting on stdin stays far below, a spinning one is far above
    // even on a machine where it only gets a slice of a core.
    h = await startGateway(['chaos-py'], {
      monitor: {
        interval_ms: 200,
        alert_after_samples: 2,
        thresholds: { cpu_percent: 5, memory_percent: 99, disk_percent: 100 },
      },
    });
  });
  after(async () => h?.close());

  it('fires while a worker spins a core and resolves when it stops', async () => {
    const idle = (await h.get('/v1/monitor/alerts?kind=cpu')).body.data.alerts;
    assert.equal(idle.length, 0, 'no CPU alert while idle');
    // A busy loop until the 2 s timeout kills it.
    const spin = h.post('/models/chaos-py/predict', { sequence: 'ACGT', options: { action: 'loop' } });
    const fired = await waitFor(async () => (await h.get('/v1/monitor/alerts?kind=cpu')).body.data.alerts[0], 10_000);
    assert.ok(fired.value >= 5, `value ${fired.value}`);
    assert.match(fired.message, /of its 1 CPU allotment \(threshold 5%\)/);
    assert.equal((await spin).status, 504);
    await waitFor(
      async () =>
        (await h.get('/v1/monitor/alerts?kind=cpu&state=resolved')).body.data.alerts.some(
          (a: any) => a.id === fired.id,
        ),
      15_000,
    );
  });
});
