// Seed 004's directory models (AnythingAgent's model-deployment guide, ../shared/spec/004_*.txt;
// docs/seed-004.md): a folder with main.py (a class deriving from AnythingBaseModel) and optional
// config.yaml, requirements.txt and data/, no model.yaml. The seed's examples are in
// examples/seed-004/ as written and run here through a real gateway, with the seed's curl calls
// translated to requests (the spec's line numbers are given at each). test/fixtures/models/
// anything-probe reports what the base class gave it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { loadConfig } from '../src/config/config.js';
import {
  classDocstring,
  directoryManifest,
  findPython,
  MAX_CONFIG_BYTES,
  normaliseModelName,
  toPythonJson,
} from '../src/manifest/anything.js';
import { discoverPackages, loadPackage, ManifestError } from '../src/manifest/load.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { FIXTURES_DIR, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { makeWheel } from './wheel.js';

const EXAMPLES = join(PACKAGE_ROOT, 'examples', 'seed-004');
const SPEC_PARTS = ['这是第一部分响应\n', '这是第二部分响应\n', '这是最后一部分响应'];

const chat = (content: string, history: { role: string; content: string }[] = []) => ({
  input: { messages: [...history, { role: 'user', content }] },
});

/** The `chunk` events' texts and the final envelope of a native SSE prediction. */
async function streamed(
  url: string,
  model: string,
  body: unknown,
): Promise<{ chunks: string[]; result: any; status: number }> {
  const res = await fetch(`${url}/models/${model}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const chunks = [...text.matchAll(/event: chunk\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!).data.text as string);
  const last = [...text.matchAll(/event: (result|error)\ndata: (.*)\n/g)].at(-1);
  return { chunks, result: last ? JSON.parse(last[2]!) : text, status: res.status };
}

/** A folder in `root` with these files (paths relative to it). */
function writeModel(root: string, name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return dir;
}

const MINIMAL_MAIN = `from app.models.base import AnythingBaseModel


class Echo(AnythingBaseModel):
    async def on_chat_messages(self, messages):
        yield messages[-1]["content"]
`;

describe('seed 004: what a folder becomes (no gateway)', () => {
  let root: string;
  before(() => {
    root = workerTmpDir('isomodel-seed4-unit-');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('names: config.yaml name, else the folder name, lower-cased with other characters made "_"', () => {
    assert.equal(normaliseModelName('my_model'), 'my_model');
    assert.equal(normaliseModelName('My Model'), 'my_model');
    assert.equal(normaliseModelName('  Chat-Bot v2.0 (beta) '), 'chat-bot_v2.0_beta');
    assert.equal(normaliseModelName('_hidden_'), 'hidden');
    assert.equal(normaliseModelName('ＦＵＬＬ'), 'full'); // NFKC: full-width letters
    assert.equal(normaliseModelName('模型'), '');
    assert.equal(normaliseModelName('x'.repeat(100)).length, 64);
  });

  it('the description falls back to the class docstring, read from the text (never imported)', () => {
    // The seed's main.py (spec lines 137-172).
    assert.equal(
      classDocstring(readFileSync(join(EXAMPLES, 'test_model', 'main.py'), 'utf8')),
      '这是一个示例模型。\n它演示了如何实现一个基本的模型。',
    );
    assert.equal(
      classDocstring(
        `import x\nclass Helper:\n    """not this"""\n\nclass M(base.AnythingBaseModel):  # the model\n    # a comment\n\n    r'''Raw \\n kept.\n      indented'''\n`,
      ),
      'Raw \\n kept.\nindented',
    );
    assert.equal(classDocstring(`class M(AnythingBaseModel):\n    "One line: \\"quoted\\"."\n`), 'One line: "quoted".');
    assert.equal(classDocstring(`class M(AnythingBaseModel):\n    x = """not a docstring"""\n`), null);
    assert.equal(classDocstring(`class M(AnythingBaseModel):\n    """never closed\n`), null);
    assert.equal(classDocstring(`class M(Other):\n    """not the model"""\n`), null);
  });

  it('config.yaml reaches self.config as PyYAML would give it: integers and floats kept apart', () => {
    assert.equal(
      toPythonJson({
        a: 1n,
        b: 1,
        c: 0.5,
        d: Infinity,
        e: NaN,
        f: [true, null, 'x'],
        g: new Date('2024-01-02T00:00:00Z'),
      }),
      '{"a":1,"b":1.0,"c":0.5,"d":Infinity,"e":NaN,"f":[true,null,"x"],"g":"2024-01-02T00:00:00.000Z"}',
    );
    assert.equal(toPythonJson(123456789012345678901234567890n), '123456789012345678901234567890');
  });

  it('isolation: its own venv and limits; python_version needs that interpreter; without it the shared one', () => {
    const base = { dir: join(root, 'iso_model'), mainText: MINIMAL_MAIN };
    // The seed's isolation example (spec lines 31-44), as written.
    const seed = readFileSync(join(EXAMPLES, 'isolated_model', 'config.yaml'), 'utf8');
    const made = directoryManifest({
      ...base,
      configText: seed,
      findPython: (v) => (v === '3.10' ? '/opt/py/bin/python3.10' : null),
    });
    assert.equal(made.raw.name, 'my_model');
    assert.equal(made.raw.version, '1.0.0');
    assert.equal(made.raw.python, '/opt/py/bin/python3.10');
    assert.deepEqual(made.raw.environment, { requirements: 'requirements.txt' });
    assert.deepEqual(made.raw.resources, { memory_mb: '1G', cpus: 1 });
    assert.equal(made.env.ISOMODEL_ANYTHING_PYTHON_VERSION, '3.10');
    assert.throws(
      () => directoryManifest({ ...base, configText: seed, findPython: () => null }),
      /isolation\.python_version: Python 3\.10 is not installed on this machine \(no python3\.10 in \/usr\/local\/bin, \/usr\/bin, \/bin or on PATH\)/,
    );
    // `isolation: true` (the seed's prose, line 29) is the same switch, without a version.
    const bare = directoryManifest({ ...base, configText: 'isolation: true\n' });
    assert.deepEqual(
      [bare.raw.environment, bare.raw.python, bare.raw.name],
      [{ requirements: 'requirements.txt' }, undefined, 'iso_model'],
    );
    // An empty config.yaml (or only comments) is no config: folder name, 0.0.0, the docstring.
    for (const configText of ['', '# nothing yet\n']) {
      const empty = directoryManifest({
        dir: join(root, 'Empty Config'),
        mainText: `${MINIMAL_MAIN.replace('class Echo(AnythingBaseModel):', 'class Echo(AnythingBaseModel):\n    """Echoes."""')}`,
        configText,
      });
      assert.deepEqual(
        [
          empty.raw.name,
          empty.raw.version,
          empty.raw.description,
          empty.raw.environment,
          empty.env.ISOMODEL_ANYTHING_CONFIG,
        ],
        ['empty_config', '0.0.0', 'Echoes.', false, '{}'],
      );
    }
    // Shared mode: no venv (requirements.txt is the shared interpreter's business), python_version unused.
    const shared = directoryManifest({ ...base, configText: 'isolation: {enabled: false, python_version: "9.9"}\n' });
    assert.deepEqual(
      [shared.raw.environment, shared.raw.python, (shared.raw.metadata as any).environment],
      [false, undefined, 'shared'],
    );
    assert.throws(
      () => directoryManifest({ ...base, configText: 'isolation: {enabled: true, python_version: "3.x"}\n' }),
      /isolation\.python_version: "3\.x" is not a Python version/,
    );
    assert.throws(
      () => directoryManifest({ ...base, configText: 'isolation: {enabled: true, resources: {memory: lots}}\n' }),
      /isolation\.resources\.memory: a size such as "1G"/,
    );
    // Found the way a gateway finds it: system folders first, then PATH.
    const fake = join(root, 'bin');
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, 'python7.3'), '#!/bin/sh\n');
    chmodSync(join(fake, 'python7.3'), 0o755);
    assert.equal(findPython('7.3', `/nonexistent:${fake}`), join(fake, 'python7.3'));
    assert.equal(findPython('7.3.1', fake), join(fake, 'python7.3'));
    assert.equal(findPython('7.4', fake), null);
  });

  it('bad folders are reported against config.yaml or main.py; what is read is bounded', () => {
    const problem = (name: string, files: Record<string, string>): ManifestError => {
      const dir = writeModel(root, name, files);
      try {
        loadPackage(dir);
      } catch (e) {
        assert.ok(e instanceof ManifestError, String(e));
        return e;
      }
      assert.fail(`${name} loaded`);
    };
    let e = problem('big', { 'main.py': MINIMAL_MAIN, 'config.yaml': `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n` });
    assert.match(e.file, /big\/config\.yaml$/);
    assert.match(e.issues[0]!, /config\.yaml is \d+ bytes; the limit is 65536 bytes \(64 KiB\)/);
    const bomb = ['a: &a ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]'];
    for (let i = 1; i < 30; i++)
      bomb.push(
        `${String.fromCharCode(97 + (i % 26))}${i}: &x${i} [*${i === 1 ? 'a' : `x${i - 1}`}, *${i === 1 ? 'a' : `x${i - 1}`}]`,
      );
    e = problem('bomb', { 'main.py': MINIMAL_MAIN, 'config.yaml': bomb.join('\n') + '\n' });
    assert.match(e.issues[0]!, /alias|expands to more than/i);
    e = problem('proto', { 'main.py': MINIMAL_MAIN, 'config.yaml': 'settings:\n  __proto__: {x: 1}\n' });
    assert.match(e.issues[0]!, /settings\.__proto__: "__proto__" cannot be a key/);
    e = problem('notyaml', { 'main.py': MINIMAL_MAIN, 'config.yaml': 'name: [unclosed\n' });
    assert.match(e.issues[0]!, /not valid YAML/);
    e = problem('list', { 'main.py': MINIMAL_MAIN, 'config.yaml': '- a\n- b\n' });
    assert.match(e.issues[0]!, /config\.yaml must be a mapping/);
    e = problem('badversion', { 'main.py': MINIMAL_MAIN, 'config.yaml': 'version: "1.0 beta"\n' });
    assert.match(e.issues[0]!, /^version: a version such as 1\.0\.0/);
    e = problem('badown', {
      'main.py': MINIMAL_MAIN,
      'config.yaml': 'isomodel: {resources: {timeout_ms: -1}, max_messages: 0}\n',
    });
    assert.deepEqual(e.issues.map((i) => i.split(':')[0]).sort(), [
      'isomodel.max_messages',
      'isomodel.resources.timeout_ms',
    ]);
    e = problem('模型', { 'main.py': MINIMAL_MAIN });
    assert.match(e.file, /main\.py$/);
    assert.match(e.issues[0]!, /no model name can be made from the folder name "模型".*set name: in config\.yaml/);
    // A FIFO in place of config.yaml or main.py is refused, never read (a read would hang).
    const fifo = writeModel(root, 'fifo', { 'main.py': MINIMAL_MAIN });
    execFileSync('mkfifo', [join(fifo, 'config.yaml')]);
    assert.throws(() => loadPackage(fifo), /config\.yaml must be a regular file/);
    // A link out of the folder: the gateway would read (as itself) and hand the worker what its user may not read.
    const secret = writeModel(root, 'elsewhere', { 'secret.yaml': 'token: s3cret\n' });
    const linked = writeModel(root, 'linked', { 'main.py': MINIMAL_MAIN });
    symlinkSync(join(secret, 'secret.yaml'), join(linked, 'config.yaml'));
    assert.throws(() => loadPackage(linked), /config\.yaml links outside the model's folder/);
    // A huge main.py is scanned only so far for its docstring, never refused for its size.
    const huge = writeModel(root, 'huge', {
      'main.py': `class M(AnythingBaseModel):\n    """Big."""\n${'# padding\n'.repeat(150_000)}`,
    });
    assert.equal(loadPackage(huge).manifest.description, 'Big.');
  });

  it('discovery: a main.py folder is a model beside model.yaml packages; its venv/ folder is not part of it', () => {
    const models = workerTmpDir('isomodel-seed4-disc-');
    try {
      cpSync(join(EXAMPLES, 'test_model'), join(models, 'test_model'), { recursive: true });
      cpSync(join(FIXTURES_DIR, 'typed-node'), join(models, 'typed-node'), { recursive: true });
      mkdirSync(join(models, 'no_main_here')); // neither file: not a package, silently
      const found = discoverPackages(models);
      assert.deepEqual(found.errors, []);
      assert.deepEqual(
        found.packages.map((p) => p.manifest.name),
        ['my_model', 'typed-node'],
      );
      const m = found.packages[0]!.manifest;
      assert.deepEqual(
        [m.version, m.description, m.runtime, m.tasks.map((t) => [t.name, t.input_type])],
        ['1.0.0', '这是一个示例模型', 'python', [['chat', 'chat']]],
      );
      const before = found.packages[0]!.fingerprint;
      writeModel(models, 'test_model', { 'venv/bin/python': 'AnythingAgent venv' }); // spec lines 64-70 make this
      assert.equal(discoverPackages(models).packages[0]!.fingerprint, before);
      // MODELS_DIR moves the models folder (spec line 103).
      assert.equal(loadConfig({ cwd: models, env: { MODELS_DIR: models } }).models_dir, models);
    } finally {
      rmSync(models, { recursive: true, force: true });
    }
  });
});

describe("seed 004: the seed's examples through a real gateway", { timeout: 180_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['anything-probe'], { cgroups: false });
  });
  after(async () => h.close());

  it('develop, then reload (spec lines 119-126, curl line 260): new folders are live; listed by /v1/models (curl line 252)', async () => {
    // "1. create the folder under models 2. write main.py 3. add config and data 4. call reload"
    cpSync(join(EXAMPLES, 'test_model'), join(h.modelsDir, 'test_model'), { recursive: true });
    cpSync(join(EXAMPLES, 'streaming_model'), join(h.modelsDir, 'streaming_model'), { recursive: true });
    // curl -X POST http://localhost:8000/v1/models/reload (spec line 260)
    const reload = await h.post('/v1/models/reload');
    assert.equal(reload.status, 200, JSON.stringify(reload.body));
    assert.deepEqual([...reload.body.data.added].sort(), ['my_model', 'streaming_model']);
    assert.deepEqual(reload.body.data.errors, []);
    await waitFor(() => ['my_model', 'streaming_model'].every((n) => h.gw.registry.status(n) === 'ready'), 60_000);
    // curl http://localhost:8000/v1/models (spec line 252)
    const list = await h.get('/v1/models');
    assert.equal(list.status, 200);
    const byName = new Map<string, any>(list.body.data.models.map((m: any) => [m.name, m]));
    assert.deepEqual(
      ['my_model', 'streaming_model', 'anything_probe'].map((n) => [
        n,
        byName.get(n)?.version,
        byName.get(n)?.description,
        byName.get(n)?.status,
        byName.get(n)?.tasks.map((t: any) => t.name),
      ]),
      [
        ['my_model', '1.0.0', '这是一个示例模型', 'ready', ['chat']], // config.yaml, spec lines 178-194
        ['streaming_model', '0.0.0', '', 'ready', ['chat']], // no config.yaml, no class docstring
        ['anything_probe', '2.10', 'Reports what it was given.\n\nUsed by the seed 004 tests.', 'ready', ['chat']], // "Anything Probe", docstring
      ],
    );
    const info = await h.get('/models/my_model/info');
    assert.equal(info.status, 200);
  });

  it("the seed's main.py (spec lines 137-172) answers, whole and streamed part by part", async () => {
    const whole = await h.post('/models/my_model/predict', chat('你好'));
    assert.equal(whole.status, 200, JSON.stringify(whole.body));
    assert.equal(whole.body.data.text, SPEC_PARTS.join(''));
    assert.equal(whole.body.data.task_type, 'chat');
    const s = await streamed(h.url, 'my_model', chat('你好'));
    assert.equal(s.status, 200);
    assert.deepEqual(s.chunks, SPEC_PARTS);
    assert.equal(s.result.data.text, SPEC_PARTS.join(''));
  });

  it("the seed's streaming example (spec lines 220-245) streams its three parts around its await", async () => {
    const s = await streamed(
      h.url,
      'streaming_model',
      chat('今天天气如何？', [{ role: 'system', content: '简短回答' }]),
    );
    assert.deepEqual(s.chunks, ['收到消息：今天天气如何？\n', '正在处理...\n', '处理完成！']);
    const whole = await h.post('/models/streaming_model/predict', chat('hi'));
    assert.equal(whole.body.data.text, '收到消息：hi\n正在处理...\n处理完成！');
  });

  it('the base class: self.config, data_dir, model_dir, context, hooks, app.models.base, stdout kept off the protocol', async () => {
    const r = await h.post('/models/anything_probe/predict', chat('report', [{ role: 'system', content: 'sys' }]));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const rep = JSON.parse(r.body.data.text);
    assert.deepEqual(rep.messages, [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'report' },
    ]);
    assert.deepEqual(
      { ...rep.config.parameters, big: undefined },
      { temperature: 0.7, top_p: 1, max_tokens: 1000, big: undefined },
    );
    assert.match(
      r.body.data.text,
      /"big": 123456789012345678901234567890\b/,
      'a YAML integer of any size arrives exact',
    );
    assert.deepEqual(rep.types, { temperature: 'float', top_p: 'float', max_tokens: 'int', big: 'int' });
    assert.deepEqual(rep.config.settings, { use_cache: true, timeout: 30, label: '中文' });
    assert.equal(rep.config.name, 'Anything Probe');
    assert.equal(rep.config_at_init, 0.7);
    const dir = join(h.modelsDir, 'anything-probe');
    assert.deepEqual([rep.model_dir, rep.data_dir, rep.data_files], [dir, join(dir, 'data'), ['hello.txt']]);
    assert.equal(rep.base_module, 'app.models.base');
    assert.deepEqual(rep.mro, ['Probe', 'AnythingBaseModel', 'ABC', 'object']);
    assert.deepEqual(rep.context, { conversation: rep.events.length });
    assert.equal(rep.events.at(-1), 'start');
    const again = JSON.parse((await h.post('/models/anything_probe/predict', chat('report'))).body.data.text);
    assert.deepEqual(
      again.events.slice(-3),
      ['start', 'end', 'start'],
      'on_chat_end after each conversation, on_chat_start before',
    );
    assert.deepEqual(again.context, { conversation: again.events.length }, 'clear_context() in on_chat_end emptied it');
    // A sibling module (helper.py) imports; printing at import did not break the protocol.
    assert.equal((await h.post('/models/anything_probe/predict', chat('hello there'))).body.data.text, 'HELLO THERE!');
    // Limits of the isomodel: block (resources.timeout_ms, max_messages).
    assert.equal(h.gw.registry.package('anything_probe').manifest.resources.timeout_ms, 20_000);
    const many = await h.post('/models/anything_probe/predict', {
      input: { messages: Array(21).fill({ role: 'user', content: 'x' }) },
    });
    assert.deepEqual([many.status, many.body.error?.code], [400, 'INPUT_TOO_LONG']);
  });

  it('a model that raises or yields non-text fails that request with a clear message and keeps serving', async () => {
    const failed = await h.post('/models/anything_probe/predict', chat('fail now'));
    assert.equal(failed.status, 500, JSON.stringify(failed.body));
    assert.equal(failed.body.error.code, 'PREDICTION_FAILED');
    assert.match(failed.body.message, /ValueError: asked to fail/);
    const s = await streamed(h.url, 'anything_probe', chat('fail now'));
    assert.deepEqual(s.chunks, ['about to fail ']);
    assert.match(JSON.stringify(s.result), /ValueError: asked to fail/);
    const bad = await h.post('/models/anything_probe/predict', chat('bad'));
    assert.match(bad.body.message, /on_chat_messages yielded a dict; it must yield text \(str\)/);
    const rep = JSON.parse((await h.post('/models/anything_probe/predict', chat('report'))).body.data.text);
    // Each failed conversation still ended (on_chat_end), none was "stopped".
    assert.ok(!rep.events.includes('stop'));
    assert.equal(
      rep.events.filter((e: string) => e === 'start').length,
      rep.events.filter((e: string) => e === 'end').length + 1,
    );
  });

  it('a client that goes away mid-stream stops the conversation: on_chat_stop, then on_chat_end', async () => {
    const ac = new AbortController();
    const res = await fetch(`${h.url}/models/anything_probe/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(chat('slow 100')),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(Buffer.from(first.value!).toString(), /event: chunk/);
    ac.abort();
    await reader.cancel().catch(() => undefined);
    // The next conversation runs once the worker is free: the stopped one left its trace.
    const rep = JSON.parse((await h.post('/models/anything_probe/predict', chat('report'))).body.data.text);
    assert.deepEqual(rep.events.slice(-4), ['start', 'stop', 'end', 'start']);
  });

  it('editing main.py or config.yaml and calling reload (curl line 260) swaps the model; a broken config.yaml keeps the last good one serving', async () => {
    const dir = join(h.modelsDir, 'streaming_model');
    const main = readFileSync(join(dir, 'main.py'), 'utf8');
    writeFileSync(join(dir, 'main.py'), main.replace('处理完成！', '完成了'));
    let reload = await h.post('/v1/models/reload');
    assert.deepEqual(reload.body.data.updated, ['streaming_model']);
    await waitFor(
      async () => (await h.post('/models/streaming_model/predict', chat('x'))).body.data?.text?.endsWith('完成了'),
      30_000,
      100,
    );
    writeFileSync(join(dir, 'config.yaml'), 'version: 1.1.0\ndescription: edited\n');
    reload = await h.post('/v1/models/reload');
    assert.deepEqual(reload.body.data.updated, ['streaming_model']);
    await waitFor(
      () =>
        h.gw.registry.package('streaming_model').manifest.version === '1.1.0' &&
        h.gw.registry.status('streaming_model') === 'ready',
      30_000,
    );
    assert.equal(
      (await h.get('/v1/models')).body.data.models.find((m: any) => m.name === 'streaming_model').description,
      'edited',
    );
    writeFileSync(join(dir, 'config.yaml'), 'version: [broken\n');
    reload = await h.post('/v1/models/reload');
    assert.equal(reload.body.data.errors.length, 1);
    assert.match(reload.body.data.errors[0].file, /streaming_model\/config\.yaml$/);
    assert.match(reload.body.data.errors[0].issues[0], /not valid YAML/);
    assert.ok(!reload.body.data.removed.includes('streaming_model'));
    const still = await h.post('/models/streaming_model/predict', chat('x'));
    assert.equal(still.body.data.text, '收到消息：x\n正在处理...\n完成了');
    const listed = (await h.get('/v1/models')).body.data.invalid_packages;
    assert.ok(
      listed.some((p: any) => /streaming_model\/config\.yaml$/.test(p.file)),
      JSON.stringify(listed),
    );
    rmSync(join(dir, 'config.yaml'));
    reload = await h.post('/v1/models/reload');
    assert.deepEqual(reload.body.data.errors, []);
  });

  it('a main.py that cannot load fails that model with its error; a second model of one name is refused', async () => {
    writeModel(h.modelsDir, 'broken_syntax', {
      'main.py': 'from app.models.base import AnythingBaseModel\nclass X(AnythingBaseModel)\n    pass\n',
    });
    writeModel(h.modelsDir, 'no_class', { 'main.py': 'from app.models.base import AnythingBaseModel\nVALUE = 1\n' });
    writeModel(h.modelsDir, 'abstract_only', {
      'main.py':
        'from app.models.base import AnythingBaseModel\nclass Half(AnythingBaseModel):\n    async def on_chat_start(self):\n        pass\n',
    });
    writeModel(h.modelsDir, 'twin', { 'main.py': MINIMAL_MAIN, 'config.yaml': 'name: my_model\nversion: 1.0.0\n' });
    const reload = await h.post('/v1/models/reload');
    assert.deepEqual([...reload.body.data.added].sort(), ['abstract_only', 'broken_syntax', 'no_class']);
    assert.equal(reload.body.data.errors.length, 1);
    assert.match(reload.body.data.errors[0].issues[0], /my_model@1\.0\.0 is already provided by .*test_model/);
    await waitFor(
      () => ['broken_syntax', 'no_class', 'abstract_only'].every((n) => h.gw.registry.status(n) === 'failed'),
      60_000,
    );
    const errors = Object.fromEntries(
      ['broken_syntax', 'no_class', 'abstract_only'].map((n) => [n, h.gw.registry.lastError(n) ?? '']),
    );
    assert.match(errors.broken_syntax!, /SyntaxError/);
    assert.match(
      errors.no_class!,
      /main\.py must define exactly one class deriving from AnythingBaseModel .*found: none/,
    );
    assert.match(errors.abstract_only!, /abstract method.*on_chat_messages/);
    const r = await h.post('/models/no_class/predict', chat('x'));
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.equal((await h.post('/models/my_model/predict', chat('x'))).body.data.text, SPEC_PARTS.join(''));
  });

  it('OpenAI client: /v1/chat/completions with model = the folder model, whole and streamed', async () => {
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'not-checked', maxRetries: 0 });
    const done = await client.chat.completions.create({
      model: 'my_model',
      messages: [{ role: 'user', content: '你好' }],
    });
    assert.equal(done.choices[0]!.message.content, SPEC_PARTS.join(''));
    const stream = await client.chat.completions.create({
      model: 'streaming_model',
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: '你好' },
      ],
      stream: true,
    });
    const deltas: string[] = [];
    for await (const c of stream) if (c.choices[0]?.delta.content) deltas.push(c.choices[0].delta.content);
    assert.equal(deltas.join(''), '收到消息：你好\n正在处理...\n完成了'); // main.py as edited by the reload test
  });
});

describe('seed 004: the file watch reloads a directory model', { timeout: 120_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startGateway([], { cgroups: false, watch: true });
  });
  after(async () => h.close());

  it('a new folder goes live, and editing main.py or config.yaml reloads it, without a reload call', async () => {
    writeModel(h.modelsDir, 'watched', { 'main.py': MINIMAL_MAIN });
    await waitFor(
      () => h.gw.registry.names().includes('watched') && h.gw.registry.status('watched') === 'ready',
      60_000,
      100,
    );
    assert.equal((await h.post('/models/watched/predict', chat('one'))).body.data.text, 'one');
    writeFileSync(
      join(h.modelsDir, 'watched', 'main.py'),
      MINIMAL_MAIN.replace('yield messages[-1]["content"]', 'yield messages[-1]["content"][::-1]'),
    );
    await waitFor(
      async () => (await h.post('/models/watched/predict', chat('abc'))).body.data?.text === 'cba',
      60_000,
      200,
    );
    writeFileSync(join(h.modelsDir, 'watched', 'config.yaml'), 'version: 2.0.0\n');
    await waitFor(
      () =>
        h.gw.registry.package('watched').manifest.version === '2.0.0' && h.gw.registry.status('watched') === 'ready',
      60_000,
      100,
    );
    assert.equal((await h.post('/models/watched/predict', chat('abc'))).body.data.text, 'cba');
  });
});

describe('seed 004: isolation (a venv of its own, limits, python_version)', { timeout: 300_000 }, () => {
  const savedPath = process.env.PATH;
  // System folders only: a pyenv shim on a developer's PATH is not an interpreter the worker user can run.
  const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';
  let h: Harness;
  let wheels: string;
  let version: string;
  before(async () => {
    process.env.PATH = SYSTEM_PATH;
    version = execFileSync('/usr/bin/python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
      encoding: 'utf8',
    }).trim();
    wheels = workerTmpDir('isomodel-seed4-wheels-');
    // isotiny 1.0: a pure-Python wheel made here (everything installs offline).
    makeWheel('/usr/bin/python3', wheels, '1.0');
    h = await startGateway([], { cgroups: false, envs: { wheel_dir: wheels } });
  });
  after(async () => {
    await h?.close();
    rmSync(wheels, { recursive: true, force: true });
    process.env.PATH = savedPath;
  });

  const probeWith = (name: string, config: string, requirements?: string): void => {
    cpSync(join(FIXTURES_DIR, 'anything-probe'), join(h.modelsDir, name), { recursive: true });
    writeFileSync(join(h.modelsDir, name, 'config.yaml'), config);
    if (requirements !== undefined) writeFileSync(join(h.modelsDir, name, 'requirements.txt'), requirements);
  };

  it('isolation.enabled: a venv from requirements.txt, on the python_version asked for, within its memory and CPU limits', async () => {
    probeWith(
      'iso_ok',
      `name: iso_ok\nisolation:\n  enabled: true\n  python_version: "${version}"\n  resources:\n    memory: "1G"\n    cpu: 2\n`,
      'isotiny==1.0\n',
    );
    // Shared mode with the same requirements: not installed (the shared interpreter's business).
    probeWith('shared_reqs', 'name: shared_reqs\n', 'isotiny==1.0\n');
    // Isolated with nothing to install: runs, on the interpreter asked for.
    probeWith(
      'iso_empty',
      `name: iso_empty\nisolation: {enabled: true, python_version: "${version}"}\n`,
      '# nothing\n',
    );
    const reload = await h.post('/v1/models/reload');
    assert.deepEqual(reload.body.data.errors, []);
    await waitFor(
      () => ['iso_ok', 'shared_reqs', 'iso_empty'].every((n) => h.gw.registry.status(n) !== 'loading'),
      240_000,
      200,
    );
    assert.equal(h.gw.registry.status('iso_ok'), 'ready', h.gw.registry.lastError('iso_ok'));
    const rep = JSON.parse((await h.post('/models/iso_ok/predict', chat('report'))).body.data.text);
    assert.equal(rep.isotiny, '1.0');
    assert.ok(rep.prefix.startsWith(join(h.gw.config.work_dir!, 'envs', 'python')), rep.prefix);
    assert.equal(rep.python, version);
    assert.equal(rep.rlimit_as, 1024 * 1024 * 1024);
    assert.equal(rep.cpus, '2');
    const listed = (await h.get('/v1/models')).body.data.models.find((m: any) => m.name === 'iso_ok');
    assert.deepEqual([listed.resources.memory_mb, listed.resources.cpus], [1024, 2]);
    const shared = JSON.parse((await h.post('/models/shared_reqs/predict', chat('report'))).body.data.text);
    assert.equal(shared.isotiny, null);
    assert.equal(shared.prefix, shared.base_prefix);
    assert.equal(shared.rlimit_as, 512 * 1024 * 1024);
    const empty = JSON.parse((await h.post('/models/iso_empty/predict', chat('report'))).body.data.text);
    assert.deepEqual([empty.isotiny, empty.python], [null, version]);
  });

  it('unavailable packages, a missing interpreter and a wrong one each fail clearly', async () => {
    probeWith('iso_missing_pkg', 'name: iso_missing_pkg\nisolation: true\n', 'isotiny==9.9\n');
    probeWith('iso_no_python', 'name: iso_no_python\nisolation: {enabled: true, python_version: "2.1"}\n');
    // python3.X is there, but not the patch release asked for: the worker's own check says so.
    probeWith(
      'iso_wrong_patch',
      `name: iso_wrong_patch\nisolation: {enabled: true, python_version: "${version}.999"}\n`,
    );
    // The seed's isolation example (spec lines 31-44) with the seed's requirements (lines 200-204), as written.
    cpSync(join(EXAMPLES, 'isolated_model'), join(h.modelsDir, 'isolated_model'), { recursive: true });
    const reload = await h.post('/v1/models/reload');
    const errors = new Map<string, string>(
      reload.body.data.errors.map((e: any) => [e.file.split('/').at(-2), e.issues.join('; ')]),
    );
    assert.match(
      errors.get('iso_no_python') ?? '',
      /isolation\.python_version: Python 2\.1 is not installed on this machine/,
    );
    const py310 = findPython('3.10', SYSTEM_PATH);
    if (py310 === null) {
      // No Python 3.10 here: said at discovery.
      assert.match(
        errors.get('isolated_model') ?? '',
        /isolation\.python_version: Python 3\.10 is not installed on this machine \(no python3\.10/,
      );
    } else {
      // Python 3.10 is here, torch==2.0.0 and friends are not among the local wheels: pip says so.
      await waitFor(() => h.gw.registry.status('my_model') === 'failed', 240_000, 200);
      assert.match(
        h.gw.registry.lastError('my_model') ?? '',
        /environment for model my_model could not be built.*(transformers|torch|numpy)/s,
      );
    }
    await waitFor(() => h.gw.registry.status('iso_missing_pkg') === 'failed', 240_000, 200);
    const err = h.gw.registry.lastError('iso_missing_pkg') ?? '';
    assert.match(err, /environment for model iso_missing_pkg could not be built/);
    assert.match(err, /isotiny==9\.9/);
    const r = await h.post('/models/iso_missing_pkg/predict', chat('x'));
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    await waitFor(() => h.gw.registry.status('iso_wrong_patch') === 'failed', 60_000, 200);
    assert.match(
      h.gw.registry.lastError('iso_wrong_patch') ?? '',
      new RegExp(
        `config\\.yaml asks for Python ${version.replace('.', '\\.')}\\.999 \\(isolation\\.python_version\\); this interpreter, /usr/bin/python${version.replace('.', '\\.')}, is Python ${version.replace('.', '\\.')}\\.\\d+`,
      ),
    );
  });
});
