// The console on a fresh install (issue 23): a model whose weights are absent is greyed with the
// command that gets them, and no alert shows. Headless Chromium against a real gateway.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startGateway, waitFor, type Harness } from './helpers.js';

const CHROMIUM = process.env.ISOMODEL_CHROMIUM ?? '/usr/bin/chromium';

describe('console: a model that needs weights', { timeout: 120_000 }, () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;

  before(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: apt-get install -y chromium, or set ISOMODEL_CHROMIUM`,
      );
    h = await startGateway(['revcomp', 'weights-node'], {
      monitor: { interval_ms: 200, thresholds: { cpu_percent: 100_000, memory_percent: 99, disk_percent: 100 } },
    });
    // A few monitor passes, so an alert would have fired by now if the model counted as failed.
    const taken = h.gw.monitor.summary().samples_taken as number;
    await waitFor(() => (h.gw.monitor.summary().samples_taken as number) > taken + 2, 10_000, 20);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    await h?.close();
  });

  it('greys its row and shows what to set, not an error', async () => {
    await page.goto(`${h.url}/console?poll=300`);
    await page.waitForSelector('#models tr[data-model="weights-node"].needs-weights');
    const hint = await page.locator('#models tr[data-model="weights-node"] td.state .hint').textContent();
    assert.match(
      hint!,
      /^set WEIGHTS_NODE_PATH to the weights folder \(model_env: \{weights-node: \{WEIGHTS_NODE_PATH: \/path\/to\/weights\}\}/,
    );
    assert.match(hint!, /then POST \/v1\/models\/weights-node\/load/);
    // The page's own style: the row's cells in grey (the CSS rule tr.needs-weights td).
    type Win = { getComputedStyle(e: unknown): { color: string } };
    const color = await page
      .locator('#models tr[data-model="weights-node"] td.version')
      .evaluate((td) => (globalThis as unknown as Win).getComputedStyle(td).color);
    assert.equal(color, 'rgb(156, 163, 175)');
    // The ready model is not greyed.
    assert.equal(await page.locator('#models tr[data-model="revcomp"].needs-weights').count(), 0);
    assert.equal(await page.locator('#models tr[data-model="revcomp"] td.state .hint').count(), 0);
  });

  it('counts no active alert', async () => {
    await waitFor(
      async () => /active alerts0(?!\d)/.test((await page.locator('#summary').textContent()) ?? ''),
      10_000,
      100,
    );
    assert.equal(h.gw.monitor.alerts.counts().firing, 0);
  });
});
