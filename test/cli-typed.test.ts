// `isomodel predict` for tasks that do not take sequences (issue 15): text as given, JSON from the
// argument or a file, a chat message, an image's bytes from its file; with no gateway (the CLI
// starts the worker itself) and through one, the same answers.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BIN, cleanEnv } from './serve-process.js';
import { FIXTURES_DIR, makeModelsDir, startGateway, workerTmpDir, type Harness } from './helpers.js';

const run = promisify(execFile);
const NO_GATEWAY = 'http://127.0.0.1:9';
const JPEG = join(FIXTURES_DIR, '..', 'media', 'red-box.jpg');

interface Out {
  code: number;
  rows: Record<string, any>[];
  stderr: string;
}

async function isomodel(args: string[], url: string): Promise<Out> {
  try {
    const r = await run(process.execPath, [BIN, ...args], {
      env: cleanEnv({ ISOMODEL_URL: url }),
      maxBuffer: 16 << 20,
    });
    return { code: 0, rows: JSON.parse(r.stdout) as Record<string, any>[], stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return {
      code: x.code,
      rows: x.stdout ? (JSON.parse(x.stdout) as Record<string, any>[]) : [],
      stderr: x.stderr ?? '',
    };
  }
}

for (const where of ['without a gateway', 'through a gateway'] as const) {
  describe(`isomodel predict with typed inputs, ${where}`, { timeout: 180_000 }, () => {
    let root: string;
    let models: string;
    let h: Harness | undefined;
    let url = NO_GATEWAY;
    let global: string[];

    before(async () => {
      root = workerTmpDir('isomodel-cli-typed-');
      models = makeModelsDir(['typed-node']);
      global = ['--models-dir', models, '--state-dir', join(root, 'state')];
      if (where === 'through a gateway') {
        h = await startGateway(['typed-node']);
        url = h.url;
      }
    });
    after(async () => {
      await h?.close();
      rmSync(root, { recursive: true, force: true });
      rmSync(models, { recursive: true, force: true });
    });

    const predict = (...args: string[]) => isomodel([...global, 'predict', 'typed-node', ...args], url);

    it('text: the argument as it is', async () => {
      const out = await predict('hello big world', '-t', 'words');
      assert.equal(out.code, 0, out.stderr);
      assert.deepEqual(
        out.rows.map((r) => [r.id, r.words, r.upper]),
        [['input1', 3, 'HELLO BIG WORLD']],
      );
    });

    it('json: from the argument or a file (named by the file)', async () => {
      const body = { symptoms: ['cough', 'fever'], patient_info: { age: 41 } };
      const lit = await predict(JSON.stringify(body), '-t', 'patient');
      assert.deepEqual(
        lit.rows.map((r) => [r.id, r.symptoms, r.age]),
        [['input1', 2, 41]],
      );
      const file = join(root, 'patient.json');
      writeFileSync(file, JSON.stringify(body));
      const fromFile = await predict(file, '-t', 'patient');
      assert.deepEqual(
        fromFile.rows.map((r) => [r.id, r.symptoms, r.age]),
        [['patient.json', 2, 41]],
      );
      const bad = await predict('{not json', '-t', 'patient');
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /this task takes json input: the argument is not valid JSON/);
    });

    it("image: the file's bytes, sniffed by the gateway's rules", async () => {
      const out = await predict(JPEG, '-t', 'look');
      assert.equal(out.code, 0, out.stderr);
      const [r] = out.rows;
      assert.equal(r!.id, 'red-box.jpg');
      assert.equal(r!.decoded_bytes, readFileSync(JPEG).length);
      assert.equal(r!.first_byte, 0xff);
      assert.equal(r!.format, 'jpeg');
      const notFile = await predict('a-cat.png', '-t', 'look');
      assert.notEqual(notFile.code, 0);
      assert.match(notFile.stderr, /this task takes image input: give the path of a file \(a-cat\.png is not one\)/);
      // Bytes that are no image are refused by the same checks as over HTTP.
      const fake = join(root, 'fake.png');
      writeFileSync(fake, 'not an image at all');
      const refused = await predict(fake, '-t', 'look');
      assert.equal(refused.code, 1);
      assert.equal(refused.rows[0]!.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('chat: one user message, or a conversation as JSON', async () => {
      const one = await predict('hi there', '-t', 'chat');
      assert.deepEqual(
        one.rows.map((r) => [r.text, r.messages]),
        [['you said: hi there', 1]],
      );
      const convo = [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'and now?' },
      ];
      const two = await predict(JSON.stringify(convo), '-t', 'chat');
      assert.deepEqual(
        two.rows.map((r) => [r.text, r.roles]),
        [['you said: and now?', ['system', 'user']]],
      );
    });
  });
}
