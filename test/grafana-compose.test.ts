// Grafana in deploy/docker/compose.yaml (issue 23): provisioned with the Prometheus service as its
// datasource and the isomodel dashboard, on loopback; and every series the dashboard queries is
// one a real gateway exposes. (Images are not pulled here: test/docker.test.ts runs `compose config`.)
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';

const DOCKER_DIR = join(PACKAGE_ROOT, 'deploy', 'docker');
const DASHBOARD = join(PACKAGE_ROOT, 'deploy', 'grafana', 'isomodel-dashboard.json');

/** host path → container path of a service's bind mounts (relative host paths from the compose file's folder). */
function binds(service: { volumes?: unknown[] }): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of service.volumes ?? []) {
    if (typeof v !== 'string' || !v.startsWith('.')) continue;
    const [host, target] = v.split(':');
    out.set(resolve(DOCKER_DIR, host!), target!);
  }
  return out;
}

describe('Grafana in deploy/docker/compose.yaml', { timeout: 60_000 }, () => {
  const compose = parseYaml(readFileSync(join(DOCKER_DIR, 'compose.yaml'), 'utf8')) as {
    services: Record<string, any>;
    volumes: Record<string, unknown>;
  };
  const grafana = compose.services.grafana;

  it('runs on loopback beside Prometheus, with its provisioning and the dashboard mounted', () => {
    assert.ok(grafana, 'a grafana service');
    assert.equal(grafana.network_mode, 'host');
    assert.equal(grafana.environment.GF_SERVER_HTTP_ADDR, '127.0.0.1');
    assert.equal(grafana.environment.GF_ANALYTICS_REPORTING_ENABLED, 'false');
    assert.match(grafana.image, /^grafana\/grafana:\d+\.\d+\.\d+$/, 'a pinned image');
    const m = binds(grafana);
    for (const host of m.keys()) assert.ok(existsSync(host), host);
    assert.equal(m.get(join(PACKAGE_ROOT, 'deploy', 'grafana', 'provisioning')), '/etc/grafana/provisioning');
    const dashTarget = m.get(DASHBOARD)!;
    assert.ok(dashTarget, 'the dashboard is mounted');
    // The dashboard provider reads the folder the dashboard is mounted in.
    const provider = parseYaml(
      readFileSync(join(PACKAGE_ROOT, 'deploy', 'grafana', 'provisioning', 'dashboards', 'isomodel.yaml'), 'utf8'),
    ) as { providers: { type: string; options: { path: string } }[] };
    assert.equal(provider.providers[0]!.type, 'file');
    assert.equal(provider.providers[0]!.options.path, dirname(dashTarget));
    assert.equal(grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, dashTarget);
    assert.ok('grafana-data' in compose.volumes);
  });

  it('reads the Prometheus service of the same file', () => {
    const ds = parseYaml(
      readFileSync(join(PACKAGE_ROOT, 'deploy', 'grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8'),
    ) as { datasources: { type: string; url: string; isDefault: boolean }[] };
    const listen = (compose.services.prometheus.command as string[])
      .find((a) => a.startsWith('--web.listen-address='))!
      .split('=')[1];
    assert.equal(ds.datasources[0]!.type, 'prometheus');
    assert.equal(ds.datasources[0]!.url, `http://${listen}`);
    assert.equal(ds.datasources[0]!.isDefault, true);
  });

  describe('the dashboard against a real gateway', () => {
    let h: Harness;
    before(async () => {
      h = await startGateway(['revcomp']);
      assert.equal((await h.post('/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
    });
    after(async () => h?.close());

    it('queries only series the gateway exposes', async () => {
      const text = String((await h.get('/metrics/prometheus')).body);
      const exposed = new Set(
        [...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap((m) =>
          m[2] === 'histogram' ? [`${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!],
        ),
      );
      const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
      const queried = new Set(
        dash.panels
          .flatMap((p) => p.targets ?? [])
          .flatMap((t) => [...t.expr.matchAll(/\b((?:isomodel|ai_model)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)),
      );
      assert.ok(queried.size >= 10, [...queried].join(' '));
      const missing = [...queried].filter((n) => !exposed.has(n));
      assert.deepEqual(missing, []);
    });
  });
});
