// The web console is plain files in src/console/static/ (one page, its classic scripts and its
// stylesheet): the gateway serves them byte for byte with their content types and policy headers,
// and both ways the gateway ships (the npm package and the gateway image) carry them, since the
// compiled dist/ alone would lack them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONSOLE_STATIC_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';

const FILES = readdirSync(CONSOLE_STATIC_DIR).sort();

describe('console static files', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway([]);
  });
  after(async () => {
    await h?.close();
  });

  it('serves each file as it is on disk, with its type and the console policy', async () => {
    const SCRIPTS = ['api.js', 'dom.js', 'overview.js', 'charts.js', 'predict.js', 'app.js'];
    assert.deepEqual(FILES, ['app.css', ...SCRIPTS, 'index.html'].sort());
    const cases: [string, string, string][] = [
      ['/console', 'index.html', 'text/html; charset=utf-8'],
      ['/console/', 'index.html', 'text/html; charset=utf-8'],
      ['/console/app.css', 'app.css', 'text/css; charset=utf-8'],
      ...SCRIPTS.map((f): [string, string, string] => [`/console/${f}`, f, 'text/javascript; charset=utf-8']),
    ];
    for (const [path, file, type] of cases) {
      const res = await fetch(`${h.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'none'; script-src 'self'/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('cache-control'), 'no-cache', path);
      assert.equal(await res.text(), readFileSync(join(CONSOLE_STATIC_DIR, file), 'utf8'), path);
    }
    // The page refers only to its own scripts (in load order, app.js last: it starts the page) and
    // stylesheet: nothing from another origin.
    const html = readFileSync(join(CONSOLE_STATIC_DIR, 'index.html'), 'utf8');
    assert.deepEqual(
      [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]),
      ['data:,', '/console/app.css', ...SCRIPTS.map((f) => `/console/${f}`)],
    );
    // Nothing else under /console reaches a file: not the page by name, not a path out of the folder.
    for (const path of ['/console/index.html', '/console/%2e%2e/package.json', '/console/x.js'])
      assert.equal((await fetch(`${h.url}${path}`)).status, 404, path);
  });

  it('ships in the npm package and in the gateway image', () => {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PACKAGE_ROOT, encoding: 'utf8' }),
    ) as { files: { path: string }[] }[];
    const paths = new Set(packed[0]!.files.map((f) => f.path));
    for (const f of FILES) assert.ok(paths.has(`src/console/static/${f}`), `npm package lacks src/console/static/${f}`);
    const dockerfile = readFileSync(join(PACKAGE_ROOT, 'deploy', 'docker', 'gateway.Dockerfile'), 'utf8');
    assert.match(dockerfile, /^COPY src\/console\/static\/ \/opt\/isomodel\/src\/console\/static\/$/m);
    const ignored = readFileSync(join(PACKAGE_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const line of ignored)
      assert.ok(!['src', 'src/', 'src/console', '**/static'].includes(line), `.dockerignore drops ${line}`);
  });
});
