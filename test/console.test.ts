// The web console end to end in headless Chromium (playwright-core driving the system
// browser): the page loads from the gateway alone, a prediction made through the form shows
// the real result, load/unload buttons change the model's state, alerts and charts show up,
// and a screenshot is taken. The try-it form follows the task's input type (text, a JSON editor,
// tensors, an image or audio file uploaded as multipart or base64, chat messages), with good and
// bad input of each through test/fixtures/models/typed-node.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startGateway, waitFor, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

const CHROMIUM = process.env.ISOMODEL_CHROMIUM ?? '/usr/bin/chromium';
const COMPLEMENT: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };

describe('web console', () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const requested: string[] = [];
  const pageErrors: string[] = [];
  const logs: Record<string, unknown>[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: the console test drives a real browser. Install it with \`apt-get install -y chromium\` (CI does), or point ISOMODEL_CHROMIUM at one.`,
      );
    }
    shots = mkdtempSync(join(tmpdir(), 'isomodel-console-'));
    h = await startGateway(
      ['revcomp', 'gc-scanner'],
      {
        default_model: 'revcomp',
        monitor: { interval_ms: 300, thresholds: { cpu_percent: 100_000, memory_percent: 99, disk_percent: 100 } },
      },
      { logs },
    );
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
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
  // What a timed-out wait on a model's state reports: the page, the gateway's view and its log.
  const explainModel = (model: string) => async (): Promise<string> => {
    const listed = (await h.get('/v1/models')).body.data.models.find((m: any) => m.name === model);
    const lines = logs
      .filter((l) => l.model === model || JSON.stringify(l).includes(model))
      .slice(-12)
      .map((l) => JSON.stringify({ msg: l.msg, ...l, time: undefined, pid: undefined, hostname: undefined }));
    return [
      `page state ${JSON.stringify(await stateOf(model).textContent())}`,
      `action status ${JSON.stringify(await page.locator('#action-status').textContent())}`,
      `gateway ${JSON.stringify({ ...listed, tasks: undefined, description: undefined })}`,
      `page errors ${JSON.stringify(pageErrors)}`,
      `log:\n${lines.join('\n')}`,
    ].join('; ');
  };

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
    assert.equal(
      data.reverse_complement,
      seq
        .split('')
        .reverse()
        .map((c) => COMPLEMENT[c])
        .join(''),
    );
    assert.equal(data.model, 'revcomp');
    assert.match((await page.locator('#predict-status').textContent())!, /done in \d+ ms/);

    // Another model and task: the task list follows the model.
    await page.selectOption('#predict-model', 'gc-scanner');
    const taskOptions = page.locator('#predict-task option');
    const values = await Promise.all(
      Array.from({ length: await taskOptions.count() }, (_, i) => taskOptions.nth(i).getAttribute('value')),
    );
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
    await waitFor(
      async () => (await stateOf('gc-scanner').textContent()) === 'unloaded',
      15_000,
      100,
      explainModel('gc-scanner'),
    );
    const listed = (await h.get('/v1/models')).body.data.models.find((m: any) => m.name === 'gc-scanner');
    assert.equal(listed.status, 'unloaded');
    assert.equal(listed.replicas, 0);
    assert.match((await page.locator('#action-status').textContent())!, /model gc-scanner unloaded/);
    assert.equal(await page.locator(`${row} button[data-action=unload]`).isDisabled(), true);

    await page.click(`${row} button[data-action=load]`);
    await waitFor(
      async () => (await stateOf('gc-scanner').textContent()) === 'ready',
      30_000,
      100,
      explainModel('gc-scanner'),
    );
    assert.equal((await h.get('/models/gc-scanner/health')).body.data.status, 'healthy');
    assert.equal(await page.locator(`${row} td.replicas`).textContent(), '1 / 1');
  });

  it('draws live charts and lists alerts', async () => {
    // Some traffic for the throughput chart.
    await Promise.all(Array.from({ length: 20 }, () => h.post('/models/revcomp/predict', { sequence: 'ACGTACGT' })));
    await waitFor(
      async () => Number(await page.locator('#chart-throughput').getAttribute('data-lines')) >= 2,
      10_000,
      100,
    );
    assert.ok((await page.locator('#chart-latency path').count()) >= 2);
    assert.ok((await page.locator('#chart-queue path').count()) >= 2);
    assert.match((await page.locator('#legend').textContent())!, /gc-scanner.*revcomp/);
    await waitFor(
      async () =>
        Number((await page.locator('#models tr[data-model="revcomp"] td.requests').textContent())!.replace(/,/g, '')) >=
        21,
      5000,
      100,
    );

    // A runtime threshold the disk is sure to cross: the alert appears in the list.
    const put = await h.gw.server!.inject({
      method: 'PUT',
      url: '/v1/monitor/thresholds',
      payload: { disk_percent: 0.001 },
    });
    assert.equal(put.statusCode, 200);
    await page.waitForSelector('#alerts li.firing[data-alert="disk:state_dir"]', { timeout: 10_000 });
    assert.match((await page.locator('#alerts li.firing').first().textContent())!, /% full \(threshold 0\.001%\)/);
    await h.gw.server!.inject({ method: 'DELETE', url: '/v1/monitor/thresholds' });
    await page.waitForSelector('#alerts li.resolved[data-alert="disk:state_dir"]', { timeout: 10_000 });
  });

  it('works against a gateway with API keys: the key entered in the header is sent, admin calls need the admin scope', async () => {
    const KEY = 'isomodel-console-test-key-predict-only';
    const keyed = await startGateway(['revcomp'], {
      auth: { keys: [{ name: 'viewer', sha256: createHash('sha256').update(KEY).digest('hex'), scopes: ['predict'] }] },
    });
    const p = await browser.newPage();
    try {
      p.on('request', (r) => requested.push(r.url().replace(keyed.url, h.url)));
      // The page itself is public; its API calls are refused until a key is given.
      assert.equal((await p.goto(`${keyed.url}/console?poll=300`))?.status(), 200);
      await p.waitForSelector('body[data-auth="needed"]');
      assert.match(
        (await p.locator('#status').textContent())!,
        /^UNAUTHORIZED: .*enter an API key with the predict scope above/,
      );
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
      assert.match(
        (await p.locator('#action-status').textContent())!,
        /unload revcomp failed: FORBIDDEN: API key "viewer" lacks the "admin" scope/,
      );
      assert.equal(
        (await keyed.get('/v1/models', { authorization: `Bearer ${KEY}` })).body.data.models[0].status,
        'ready',
      );
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
    assert.deepEqual(
      requested.filter((u) => !u.startsWith(h.url) && !u.startsWith('data:')),
      [],
    );
    // The only console errors are the browser's own lines for the 400/401/403 answers provoked above.
    assert.deepEqual(
      pageErrors.filter((e) => !/status of 40[013]/.test(e)),
      [],
    );
  });
});

describe('web console: the try-it form by input type', () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let shots: string;
  const predictCalls: { type: string; body: string }[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set ISOMODEL_CHROMIUM)`,
      );
    shots = mkdtempSync(join(tmpdir(), 'isomodel-console-typed-'));
    h = await startGateway(['typed-node', 'revcomp'], { default_model: 'typed-node' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1300 } });
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/predict$/.test(r.url()))
        predictCalls.push({ type: r.headers()['content-type'] ?? '', body: r.postData() ?? '' });
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    await page.goto(`${h.url}/console?poll=500`);
    await page.waitForSelector('#models tr[data-model="typed-node"] td.state.ready');
  });
  after(async () => {
    await browser?.close();
    await h?.close();
    if (shots) rmSync(shots, { recursive: true, force: true });
  });

  const chooseTask = async (task: string, type: string) => {
    await page.selectOption('#predict-model', 'typed-node');
    await page.selectOption('#predict-task', task);
    await page.waitForSelector(`#predict-form[data-input-type="${type}"]`);
  };
  /** Submits and waits for this submission's answer: the result as JSON, or the error text. */
  const submit = async (): Promise<{ ok: boolean; text: string }> => {
    await page.locator('#predict-status').evaluate((e) => (e.textContent = ''));
    await page.click('#predict-submit');
    await waitFor(
      async () => /^(done in|failed)/.test((await page.locator('#predict-status').textContent()) ?? ''),
      15_000,
      50,
    );
    const ok = /^done in/.test((await page.locator('#predict-status').textContent())!);
    return { ok, text: (await page.locator('#predict-result').textContent())! };
  };

  it("text: the task list says each task's input type; a text box; too long is INPUT_TOO_LONG", async () => {
    await chooseTask('words', 'text');
    const labels = await page.locator('#predict-task option').allTextContents();
    assert.deepEqual(labels, [
      'words (text)',
      'patient (json)',
      'add (tensor)',
      'look (image)',
      'listen (audio)',
      'chat (chat)',
    ]);
    assert.equal(await page.locator('#predict-sequence-name').textContent(), 'text');
    assert.equal(await page.locator('#predict-json-box').isHidden(), true);
    await page.fill('#predict-sequence', 'hello big world');
    const r = await submit();
    assert.ok(r.ok, r.text);
    const data = JSON.parse(r.text);
    assert.deepEqual(
      [data.words, data.upper, data.input_type, data.task_type],
      [3, 'HELLO BIG WORLD', 'text', 'words'],
    );
    assert.deepEqual(JSON.parse(predictCalls.at(-1)!.body), { task_type: 'words', input: 'hello big world' });
    await page.fill('#predict-sequence', 'x'.repeat(201));
    const long = await submit();
    assert.equal(long.ok, false);
    assert.match(long.text, /^INPUT_TOO_LONG: input has 201 characters; the limit is 200/);
  });

  it('json: an editor started from the schema, checked as JSON before sending, then by the task schema', async () => {
    await chooseTask('patient', 'json');
    assert.equal(await page.locator('#predict-sequence-box').isHidden(), true);
    // The template comes from the schema: its required property.
    await waitFor(async () => (await page.locator('#predict-json').inputValue()).includes('symptoms'), 5000, 50);
    assert.deepEqual(JSON.parse(await page.locator('#predict-json').inputValue()), { symptoms: [''] });
    const calls = predictCalls.length;
    await page.fill('#predict-json', '{"symptoms": [');
    assert.match((await page.locator('#predict-json-status').textContent())!, /^not valid JSON/);
    await page.click('#predict-submit');
    await page.locator('#predict-status', { hasText: 'input: not valid JSON' }).waitFor();
    assert.equal(predictCalls.length, calls, 'nothing is sent');
    await page.fill('#predict-json', '{"patient_info": {"age": 35}}');
    assert.equal(await page.locator('#predict-json-status').textContent(), 'valid JSON');
    const bad = await submit();
    assert.equal(bad.ok, false);
    assert.match(bad.text, /^INVALID_INPUT: .*missing the required property "symptoms"/);
    await page.fill(
      '#predict-json',
      JSON.stringify({ symptoms: ['头痛', '乏力'], patient_info: { age: 35, gender: 'female' } }),
    );
    const good = await submit();
    assert.ok(good.ok, good.text);
    assert.deepEqual([JSON.parse(good.text).symptoms, JSON.parse(good.text).age], [2, 35]);
  });

  it("tensor: a template in the tensors' shapes; a wrong shape is refused", async () => {
    await chooseTask('add', 'tensor');
    await waitFor(async () => (await page.locator('#predict-json').inputValue()).includes('"b"'), 5000, 50);
    assert.deepEqual(JSON.parse(await page.locator('#predict-json').inputValue()), { a: [[0, 0]], b: [0, 0] });
    await page.fill('#predict-json', '{"a": [[1, 2], [3, 4]], "b": [10, 20]}');
    const r = await submit();
    assert.ok(r.ok, r.text);
    assert.deepEqual(JSON.parse(r.text).sums, [33, 37]);
    await page.fill('#predict-json', '{"a": [[1, 2, 3]], "b": [0, 0]}');
    assert.match((await submit()).text, /^INVALID_INPUT: .*shape \[1, 3\]/);
  });

  it('image: a file picked and uploaded (multipart, or base64 in JSON) with a preview; broken or oversized files refused', async () => {
    await chooseTask('look', 'image');
    assert.equal(await page.locator('#predict-file').getAttribute('accept'), 'image/png,image/jpeg,image/gif');
    assert.match(
      (await page.locator('#predict-file-info').textContent())!,
      /^png, jpeg, gif · at most 100000 bytes, 1000000 pixels$/,
    );
    const png = makePng(20, 10, (x) => [x * 10, 0, 0]);
    await page.setInputFiles('#predict-file', { name: 'red.png', mimeType: 'image/png', buffer: png });
    await page.waitForSelector('#predict-preview:not([hidden])');
    assert.match((await page.locator('#predict-preview').getAttribute('src'))!, /^data:image\/png;base64,iVBORw0KGgo/);
    const r = await submit();
    assert.ok(r.ok, r.text);
    const data = JSON.parse(r.text);
    assert.deepEqual(
      [data.format, data.width, data.height, data.decoded_bytes, data.input_type],
      ['png', 20, 10, png.length, 'image'],
    );
    assert.ok(!r.text.includes(png.toString('base64').slice(0, 40)), 'the image is not echoed');
    // Sent as a multipart upload (the browser does not expose a file-backed body; the answer's facts show the file arrived).
    assert.match(predictCalls.at(-1)!.type, /^multipart\/form-data; boundary=/);

    await page.selectOption('#predict-file-mode', 'base64');
    const b64 = await submit();
    assert.ok(b64.ok, b64.text);
    assert.equal(JSON.parse(b64.text).width, 20);
    assert.equal(JSON.parse(predictCalls.at(-1)!.body).input, `data:image/png;base64,${png.toString('base64')}`);
    await page.selectOption('#predict-file-mode', 'multipart');

    await page.setInputFiles('#predict-file', {
      name: 'cut.png',
      mimeType: 'image/png',
      buffer: png.subarray(0, png.length - 20),
    });
    assert.match((await submit()).text, /^UNSUPPORTED_MEDIA_TYPE: .*truncated PNG/);
    await page.setInputFiles('#predict-file', { name: 'big.png', mimeType: 'image/png', buffer: makePng(1001, 1000) });
    assert.match((await submit()).text, /^PAYLOAD_TOO_LARGE: .*pixels; the limit is 1000000 pixels/);
    await page.setInputFiles('#predict-file', {
      name: 'noise.png',
      mimeType: 'image/png',
      buffer: Buffer.alloc(150_000, 1),
    });
    assert.match((await submit()).text, /^PAYLOAD_TOO_LARGE: .*the limit is 100000/);
    await page.setInputFiles('#predict-file', []);
    await page.click('#predict-submit');
    await page.locator('#predict-status', { hasText: 'choose an image file' }).waitFor();
    await page.screenshot({ path: join(shots, 'console-image.png'), fullPage: true });
  });

  it('audio: a WAV file uploaded; one with a wrong header refused', async () => {
    await chooseTask('listen', 'audio');
    const wav = makeWav(1.5);
    assert.equal(await page.locator('#predict-file-info').textContent(), 'wav · at most 200000 bytes, 5 s');
    await page.setInputFiles('#predict-file', { name: 'tone.wav', mimeType: 'audio/wav', buffer: wav });
    assert.equal(await page.locator('#predict-preview').isHidden(), true);
    const r = await submit();
    assert.ok(r.ok, r.text);
    assert.deepEqual([JSON.parse(r.text).duration_s, JSON.parse(r.text).sample_rate], [1.5, 8000]);
    const bad = Buffer.from(wav);
    bad.write('JUNK', 12, 'latin1');
    await page.setInputFiles('#predict-file', { name: 'bad.wav', mimeType: 'audio/wav', buffer: bad });
    assert.match((await submit()).text, /^UNSUPPORTED_MEDIA_TYPE: .*before the fmt chunk/);
  });

  it('chat: a list of messages with roles; an empty message list is refused', async () => {
    await chooseTask('chat', 'chat');
    assert.equal(await page.locator('#predict-messages .message').count(), 1);
    await page.locator('#predict-messages .message-role').first().selectOption('system');
    await page.locator('#predict-messages .message-content').first().fill('be brief');
    await page.click('#predict-add-message');
    assert.equal(await page.locator('#predict-messages .message-role').nth(1).inputValue(), 'user');
    await page.locator('#predict-messages .message-content').nth(1).fill('hi there');
    const r = await submit();
    assert.ok(r.ok, r.text);
    assert.deepEqual([JSON.parse(r.text).text, JSON.parse(r.text).roles], ['you said: hi there', ['system', 'user']]);
    assert.deepEqual(JSON.parse(predictCalls.at(-1)!.body).input, {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi there' },
      ],
    });
    await page.locator('#predict-messages .message-content').nth(1).fill('x'.repeat(501));
    assert.match((await submit()).text, /^INPUT_TOO_LONG: /);
  });

  it('sequences are as before, and nothing failed in the page but the refused requests', async () => {
    await page.selectOption('#predict-model', 'revcomp');
    await page.waitForSelector('#predict-form[data-input-type="sequence"]');
    assert.equal(await page.locator('#predict-task option').first().textContent(), 'reverse_complement (DNA, RNA)');
    await page.fill('#predict-sequence', 'AACG');
    const r = await submit();
    assert.equal(JSON.parse(r.text).reverse_complement, 'CGTT');
    assert.deepEqual(JSON.parse(predictCalls.at(-1)!.body), { task_type: 'reverse_complement', sequence: 'AACG' });
    assert.deepEqual(
      pageErrors.filter((e) => !/status of 4(00|13|15)/.test(e)),
      [],
    );
  });
});
