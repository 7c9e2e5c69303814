// The web console end to end in headless Chromium (playwright-core driving the system
// browser): the page loads from the gateway alone, a prediction made through the form shows
// the real result, load/unload buttons change the model's state, alerts and charts show up,
// and a screenshot is taken.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startGateway, waitFor, type Harness } from './helpers.js';

const CHROMIUM = process.env.ISOMODEL_CHROMIUM ?? '/usr/bin/chromium';
const COMPLEMENT: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };

describe('web console', () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const requested: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not installed at ${CHROMIUM}: the console test drives a real browser. Install it with \`apt-get install -y chromium\` (CI does), or point ISOMODEL_CHROMIUM at one.`);
    }
    shots = mkdtempSync(join(tmpdir(), 'isomodel-console-'));
    h = await startGateway(['revcomp', 'gc-scanner'], { default_model: 'revcomp', monitor: { interval_ms: 300, thresholds: { cpu_percent: 100_000, memory_percent: 99, disk_percent: 100 } } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    if (shots) rmSync(shots, { recursive: true, force: true });
  });

  const stateOf = (model: string) => page.locator(`#models tr[data-model="${model}"] td.state`);

  it('loads from the gateway alone and lists the models with their state', async () => {
    const res = await page.goto(`${h.url}/console?poll=300`);
    assert.equal(res?.status(), 200);
    assert.match(res!.headers()['content-security-policy']!, /default-src 'none'; script-src 'self'/);
    assert.equal(await page.title(), 'isomodel console');
    await page.waitForSelector('#models tr[data-model="revcomp"] td.state.ready');
    await page.waitForSelector('#models tr[data-model="gc-scanner"] td.state.ready');
    assert.equal(await page.locator('#models tr[data-model="revcomp"] td.version').textContent(), '1.0.0');
    assert.equal(await page.locator('#models tr[data-model="gc-scanner"] td.replicas').textContent(), '1 / 1');
    assert.match((await page.locator('#summary').textContent())!, /models watched2 \/ 2/);
    // The form lists every model and the default model's tasks.
    assert.deepEqual(await page.locator('#predict-model option').allTextContents(), ['gc-scanner', 'revcomp']);
    assert.equal(await page.locator('#predict-model').inputValue(), 'revcomp');
  });

  it('shows the result of a prediction made through the form', async () => {
    const seq = 'AACGTTTGCAGGGATC';
    await page.selectOption('#predict-model', 'revcomp');
    await page.selectOption('#predict-task', 'reverse_complement');
    await page.fill('#predict-sequence', seq);
    await page.click('#predict-submit');
    await page.locator('#predict-result', { hasText: 'reverse_complement' }).waitFor();
    const data = JSON.parse((await page.locator('#predict-result').textContent())!);
    assert.equal(data.reverse_complement, seq.split('').reverse().map((c) => COMPLEMENT[c]).join(''));
    assert.equal(data.model, 'revcomp');
    assert.match((await page.locator('#predict-status').textContent())!, /done in \d+ ms/);

    // Another model and task: the task list follows the model.
    await page.selectOption('#predict-model', 'gc-scanner');
    const taskOptions = page.locator('#predict-task option');
    const values = await Promise.all(Array.from({ length: await taskOptions.count() }, (_, i) => taskOptions.nth(i).getAttribute('value')));
    assert.deepEqual(values, ['gc_content', 'motif_scan']);
    await page.selectOption('#predict-task', 'gc_content');
    await page.fill('#predict-sequence', 'GGCCAT');
    await page.click('#predict-submit');
    await page.locator('#predict-result', { hasText: 'gc_content' }).waitFor();
    assert.equal(JSON.parse((await page.locator('#predict-result').textContent())!).gc_content, 4 / 6);

    // A bad sequence shows the error code, not a result.
    await page.fill('#predict-sequence', 'ACGTZZ');
    await page.click('#predict-submit');
    await page.waitForSelector('#predict-result.error');
    assert.match((await page.locator('#predict-result').textContent())!, /^INVALID_SEQUENCE: /);
  });

  it('unloads and loads a model with its buttons', async () => {
    const row = '#models tr[data-model="gc-scanner"]';
    assert.equal(await page.locator(`${row} button[data-action=load]`).isDisabled(), true);
    await page.click(`${row} button[data-action=unload]`);
    await waitFor(async () => (await stateOf('gc-scanner').textContent()) === 'unloaded', 15_000, 100);
    const listed = (await h.get('/v1/models')).body.data.models.find((m: any) => m.name === 'gc-scanner');
    assert.equal(listed.status, 'unloaded');
    assert.equal(listed.replicas, 0);
    assert.match((await page.locator('#action-status').textContent())!, /model gc-scanner unloaded/);
    assert.equal(await page.locator(`${row} button[data-action=unload]`).isDisabled(), true);

    await page.click(`${row} button[data-action=load]`);
    await waitFor(async () => (await stateOf('gc-scanner').textContent()) === 'ready', 30_000, 100);
    assert.equal((await h.get('/models/gc-scanner/health')).body.data.status, 'healthy');
    assert.equal(await page.locator(`${row} td.replicas`).textContent(), '1 / 1');
  });

  it('draws live charts and lists alerts', async () => {
    // Some traffic for the throughput chart.
    await Promise.all(Array.from({ length: 20 }, () => h.post('/models/revcomp/predict', { sequence: 'ACGTACGT' })));
    await waitFor(async () => Number(await page.locator('#chart-throughput').getAttribute('data-lines')) >= 2, 10_000, 100);
    assert.ok((await page.locator('#chart-latency path').count()) >= 2);
    assert.ok((await page.locator('#chart-queue path').count()) >= 2);
    assert.match((await page.locator('#legend').textContent())!, /gc-scanner.*revcomp/);
    await waitFor(async () => Number((await page.locator('#models tr[data-model="revcomp"] td.requests').textContent())!.replace(/,/g, '')) >= 21, 5000, 100);

    // A runtime threshold the disk is sure to cross: the alert appears in the list.
    const put = await h.gw.server!.inject({ method: 'PUT', url: '/v1/monitor/thresholds', payload: { disk_percent: 0.001 } });
    assert.equal(put.statusCode, 200);
    await page.waitForSelector('#alerts li.firing[data-alert="disk:state_dir"]', { timeout: 10_000 });
    assert.match((await page.locator('#alerts li.firing').first().textContent())!, /% full \(threshold 0\.001%\)/);
    await h.gw.server!.inject({ method: 'DELETE', url: '/v1/monitor/thresholds' });
    await page.waitForSelector('#alerts li.resolved[data-alert="disk:state_dir"]', { timeout: 10_000 });
  });

  it('works against a gateway with API keys: the key entered in the header is sent, admin calls need the admin scope', async () => {
    const KEY = 'isomodel-console-test-key-predict-only';
    const keyed = await startGateway(['revcomp'], { auth: { keys: [{ name: 'viewer', sha256: createHash('sha256').update(KEY).digest('hex'), scopes: ['predict'] }] } });
    const p = await browser.newPage();
    try {
      p.on('request', (r) => requested.push(r.url().replace(keyed.url, h.url)));
      // The page itself is public; its API calls are refused until a key is given.
      assert.equal((await p.goto(`${keyed.url}/console?poll=300`))?.status(), 200);
      await p.waitForSelector('body[data-auth="needed"]');
      assert.match((await p.locator('#status').textContent())!, /^UNAUTHORIZED: .*enter an API key with the predict scope above/);
      await p.fill('#api-key', KEY);
      await p.click('#key-form button');
      await p.waitForSelector('#models tr[data-model="revcomp"] td.state.ready');
      assert.equal(await p.locator('#api-key').inputValue(), '', 'the key does not stay in the field');
      await p.fill('#predict-sequence', 'ACCGT');
      await p.click('#predict-submit');
      await p.locator('#predict-result', { hasText: 'reverse_complement' }).waitFor();
      assert.equal(JSON.parse((await p.locator('#predict-result').textContent())!).reverse_complement, 'ACGGT');
      // Unload goes through the admin hook with the same key, which lacks the admin scope.
      await p.click('#models tr[data-model="revcomp"] button[data-action=unload]');
      await p.locator('#action-status', { hasText: 'FORBIDDEN' }).waitFor();
      assert.match((await p.locator('#action-status').textContent())!, /unload revcomp failed: FORBIDDEN: API key "viewer" lacks the "admin" scope/);
      assert.equal((await keyed.get('/v1/models', { authorization: `Bearer ${KEY}` })).body.data.models[0].status, 'ready');
    } finally {
      await p.close();
      await keyed.close();
    }
  });

  it('takes a screenshot, and loaded nothing from anywhere but the gateway', async () => {
    const file = join(shots, 'console.png');
    await page.screenshot({ path: file, fullPage: true });
    const png = readFileSync(file);
    assert.ok(png.length > 1000, `screenshot is ${png.length} bytes`);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(requested.length > 5);
    assert.deepEqual(requested.filter((u) => !u.startsWith(h.url) && !u.startsWith('data:')), []);
    // The only console errors are the browser's own lines for the 400/401/403 answers provoked above.
    assert.deepEqual(pageErrors.filter((e) => !/status of 40[013]/.test(e)), []);
  });
});
