// models/langid through a real gateway and its real Python worker: the worker reproduces the
// answers the training script recorded, its accuracy on the held-out words and 3-word sentences
// written by training/train_langid.py is the figure in the training report (and above a bound),
// and it identifies real sentences written for this test. Also: the quick retrain reproduces the
// shipped table byte for byte (where the Debian word lists are installed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';
import { LONG_SKIP } from './long.js';

const PKG = join(BUILTIN_MODELS_DIR, 'langid');
const REPORT = JSON.parse(readFileSync(join(PKG, 'training_report.json'), 'utf8'));
const LANGS = ['en', 'de', 'fr', 'es', 'it', 'pt', 'nl'] as const;

/**
 * Real sentences, written by hand for this test (not drawn from the word lists, never used in
 * training or model choice): everyday sentences, six per language, with their function words.
 */
const REAL_SENTENCES: Record<(typeof LANGS)[number], string[]> = {
  en: [
    'The weather was cold, so we stayed at home and read books all afternoon.',
    'Could you tell me where the nearest railway station is?',
    'She has been working in this hospital for more than ten years.',
    'I forgot my umbrella on the bus this morning.',
    'They will arrive tomorrow evening after the meeting.',
    'Please close the window before you leave the room.',
  ],
  de: [
    'Das Wetter war kalt, deshalb sind wir zu Hause geblieben und haben gelesen.',
    'Können Sie mir sagen, wo der nächste Bahnhof ist?',
    'Sie arbeitet seit mehr als zehn Jahren in diesem Krankenhaus.',
    'Ich habe heute Morgen meinen Regenschirm im Bus vergessen.',
    'Sie kommen morgen Abend nach der Besprechung an.',
    'Bitte schließen Sie das Fenster, bevor Sie den Raum verlassen.',
  ],
  fr: [
    'Il faisait froid, alors nous sommes restés à la maison pour lire.',
    'Pourriez-vous me dire où se trouve la gare la plus proche ?',
    'Elle travaille dans cet hôpital depuis plus de dix ans.',
    "J'ai oublié mon parapluie dans le bus ce matin.",
    'Ils arriveront demain soir après la réunion.',
    "Fermez la fenêtre avant de quitter la pièce, s'il vous plaît.",
  ],
  es: [
    'Hacía frío, así que nos quedamos en casa leyendo toda la tarde.',
    '¿Podría decirme dónde está la estación de tren más cercana?',
    'Ella trabaja en este hospital desde hace más de diez años.',
    'Esta mañana olvidé mi paraguas en el autobús.',
    'Llegarán mañana por la noche después de la reunión.',
    'Por favor, cierra la ventana antes de salir de la habitación.',
  ],
  it: [
    'Faceva freddo, così siamo rimasti a casa a leggere tutto il pomeriggio.',
    "Potrebbe dirmi dov'è la stazione ferroviaria più vicina?",
    'Lavora in questo ospedale da più di dieci anni.',
    "Stamattina ho dimenticato l'ombrello sull'autobus.",
    'Arriveranno domani sera dopo la riunione.',
    'Per favore, chiudi la finestra prima di uscire dalla stanza.',
  ],
  pt: [
    'Estava frio, por isso ficámos em casa a ler toda a tarde.',
    'Pode dizer-me onde fica a estação de comboios mais próxima?',
    'Ela trabalha neste hospital há mais de dez anos.',
    'Esta manhã esqueci-me do guarda-chuva no autocarro.',
    'Eles vão chegar amanhã à noite depois da reunião.',
    'Por favor, feche a janela antes de sair da sala.',
  ],
  nl: [
    'Het was koud, dus we bleven thuis en lazen de hele middag.',
    'Kunt u me vertellen waar het dichtstbijzijnde station is?',
    'Zij werkt al meer dan tien jaar in dit ziekenhuis.',
    'Ik ben vanochtend mijn paraplu in de bus vergeten.',
    'Ze komen morgenavond na de vergadering aan.',
    'Doe alsjeblieft het raam dicht voordat je de kamer verlaat.',
  ],
};

function readTsv(file: string): string[][] {
  return readFileSync(join(PKG, 'eval', file), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

describe('langid model', () => {
  let h: Harness;
  const predictBatch = async (inputs: string[]): Promise<any[]> => {
    const out: any[] = [];
    for (let i = 0; i < inputs.length; i += 100) {
      const r = await h.post('/models/langid/predict/batch', { inputs: inputs.slice(i, i + 100) });
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
      out.push(...r.body.data.predictions);
    }
    return out;
  };

  before(async () => {
    h = await startGateway(['langid']);
    assert.equal(h.gw.registry.status('langid'), 'ready', h.gw.registry.lastError('langid') ?? '');
  });
  after(async () => h.close());

  it('reproduces the answers recorded by the training script', async () => {
    const { vectors } = JSON.parse(readFileSync(join(PKG, 'test_vectors.json'), 'utf8'));
    for (const v of vectors) {
      const r = await h.post('/models/langid/predict', { input: v.text });
      if (v.output.error) {
        assert.deepEqual([r.status, r.body.error.code], [400, v.output.error.code], v.text);
        continue;
      }
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const { prediction, confidence, details } = r.body.data;
      assert.deepEqual({ prediction, confidence, details }, v.output, v.text);
    }
  });

  it('the envelope: prediction, confidence, all seven probabilities, words and coverage', async () => {
    const r = await h.post('/models/langid/predict', { input: 'Où se trouve la gare, s’il vous plaît ?' });
    assert.equal(r.status, 200);
    const d = r.body.data;
    assert.deepEqual(
      [d.prediction, d.details.name, d.task_type, d.input_type, d.model],
      ['fr', 'French', 'language_identification', 'text', 'langid'],
    );
    assert.deepEqual(Object.keys(d.details.probabilities).sort(), [...LANGS].sort());
    const sum = Object.values(d.details.probabilities as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
    assert.equal(d.confidence, d.details.probabilities.fr);
    assert.equal(d.details.words, 8);
    assert.ok(d.details.coverage > 0.8 && d.details.coverage <= 1, `coverage ${d.details.coverage}`);
    // Another script: nothing known, so no language (and no made-up confidence).
    const cyr = await h.post('/models/langid/predict', { input: 'Привет, как дела?' });
    assert.deepEqual(
      [cyr.body.data.prediction, cyr.body.data.confidence, cyr.body.data.details.coverage],
      [null, null, 0],
    );
    const none = await h.post('/models/langid/predict', { input: '1234 !!' });
    assert.deepEqual([none.status, none.body.error.code], [400, 'INVALID_INPUT']);
    const long = await h.post('/models/langid/predict', { input: 'a'.repeat(10_001) });
    assert.deepEqual([long.status, long.body.error.code], [400, 'INPUT_TOO_LONG']);
  });

  it('held-out words: the accuracy of the training report, and at least 85 % (any list holding the word)', async (t) => {
    const rows = readTsv('test_words.tsv');
    assert.equal(rows.length, REPORT.eval_files['test_words.tsv'].lines);
    const preds = await predictBatch(rows.map((r) => r[1]!));
    const ok = preds.filter((p, i) => rows[i]![2]!.split(',').includes(p.prediction)).length;
    const accuracy = ok / rows.length;
    t.diagnostic(`held-out words: ${(accuracy * 100).toFixed(2)} % of ${rows.length}`);
    assert.equal(Number(accuracy.toFixed(4)), REPORT.eval_files['test_words.tsv'].accuracy_any_list);
    assert.ok(accuracy >= 0.85, `word accuracy ${accuracy}`);
  });

  it('held-out 3-word sentences: the accuracy of the training report, and at least 97 %', async (t) => {
    const rows = readTsv('test_sentences_3.tsv');
    const preds = await predictBatch(rows.map((r) => r[1]!));
    const perLang = new Map<string, [number, number]>();
    preds.forEach((p, i) => {
      const lang = rows[i]![0]!;
      const [ok, n] = perLang.get(lang) ?? [0, 0];
      perLang.set(lang, [ok + (p.prediction === lang ? 1 : 0), n + 1]);
    });
    const ok = [...perLang.values()].reduce((a, [k]) => a + k, 0);
    const accuracy = ok / rows.length;
    t.diagnostic(
      `held-out 3-word sentences: ${(accuracy * 100).toFixed(2)} % of ${rows.length}; ${[...perLang].map(([l, [k, n]]) => `${l} ${((100 * k) / n).toFixed(1)}`).join(', ')}`,
    );
    assert.equal(Number(accuracy.toFixed(4)), REPORT.eval_files['test_sentences_3.tsv'].accuracy);
    assert.ok(accuracy >= 0.97, `sentence accuracy ${accuracy}`);
    for (const [lang, [k, n]] of perLang) assert.ok(k / n >= 0.95, `${lang}: ${k}/${n}`);
  });

  it('real sentences written for this test: at least 36 of 42 right', async (t) => {
    const items = LANGS.flatMap((l) => REAL_SENTENCES[l].map((s) => ({ lang: l, text: s })));
    const preds = await predictBatch(items.map((x) => x.text));
    const wrong = items
      .map((x, i) => ({ ...x, got: preds[i].prediction, p: preds[i].confidence }))
      .filter((x) => x.got !== x.lang);
    t.diagnostic(
      `real sentences: ${items.length - wrong.length}/${items.length}; wrong: ${wrong.map((w) => `${w.lang}→${w.got} (${w.p}) "${w.text}"`).join(' | ') || 'none'}`,
    );
    assert.ok(items.length - wrong.length >= 36, `${items.length - wrong.length}/${items.length}`);
  });
});

// The quick retrain (the dev-set choice read from the shipped report) rebuilds the table from the
// word lists; it must equal the shipped one byte for byte (uncompressed: zlib versions may differ).
const PYTHON = '/usr/bin/python3';
const LISTS = [
  'american-english',
  'british-english',
  'ngerman',
  'french',
  'spanish',
  'italian',
  'portuguese',
  'dutch',
].map((f) => join('/usr/share/dict', f));
const missingLists = LISTS.filter((f) => !existsSync(f));
const skip =
  LONG_SKIP ||
  (missingLists.length
    ? `word lists not installed (apt-get install wamerican wbritish wngerman wfrench wspanish witalian wportuguese wdutch): ${missingLists.join(', ')}`
    : !existsSync(PYTHON)
      ? `${PYTHON} not found`
      : false);

describe('langid training', () => {
  it(
    'a quick retrain writes the shipped table and test vectors, byte for byte',
    { skip, timeout: 1_200_000 },
    async (t) => {
      for (const s of REPORT.data.sources) {
        assert.equal(
          createHash('sha256').update(readFileSync(s.file)).digest('hex'),
          s.sha256,
          `${s.file} is not the list the shipped model was trained on`,
        );
      }
      const out = mkdtempSync(join(tmpdir(), 'isomodel-train-langid-'));
      try {
        const started = Date.now();
        await promisify(execFile)(
          PYTHON,
          [join(PACKAGE_ROOT, 'training', 'train_langid.py'), '--final-only', '--out', out],
          { timeout: 1_200_000, maxBuffer: 16 * 1024 * 1024 },
        );
        t.diagnostic(`train_langid.py --final-only: ${((Date.now() - started) / 1000).toFixed(0)} s`);
        const table = (dir: string) =>
          createHash('sha256')
            .update(gunzipSync(readFileSync(join(dir, 'data', 'ngram_counts.tsv.gz'))))
            .digest('hex');
        assert.equal(table(out), table(PKG));
        assert.equal(
          table(out),
          JSON.parse(readFileSync(join(PKG, 'data', 'langid.json'), 'utf8')).counts_sha256_uncompressed,
        );
        for (const f of ['data/langid.json', 'test_vectors.json'])
          assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(PKG, f), 'utf8'), f);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  );
});
