// training/ reproduces the shipped ONNX classifiers byte for byte (promoter in `npm test`; splice
// and digits, 10-12 s of CPU each, in `npm run test:long`, test/long.ts). A quick retrain of each
// (`--final-only`: the model choice by inner grouped CV on all the data, the final fit, the export;
// the outer cross-validation is skipped) must write a model.onnx and a test_vectors.json with the
// sha256 of the files in models/<name>/; for digits (trained on scikit-learn's bundled copy of
// its data, so never skipped for want of data) a model.onnx and a holdout.json. The fits are convex and rounded to a grid (see
// training/README.md), so this holds on any machine with the same Debian packages.
//
// Needs the training data in ../shared/data/ next to the repository (skipped, with the reason,
// where it is not there) and /usr/bin/python3 with python3-torch, -sklearn, -onnx, -numpy (.ci/run
// installs them; with the data present, a CI run fails without them instead of skipping).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { missingPythonModules } from './python-modules.js';
import { LONG_SKIP } from './long.js';

const PYTHON = '/usr/bin/python3';
const DATA_DIR = join(dirname(PACKAGE_ROOT), 'shared', 'data');
const run = promisify(execFile);
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function missingPackages(): string | null {
  const missing = missingPythonModules(PYTHON, ['torch', 'sklearn', 'onnx', 'scipy', 'numpy']);
  return missing && `${missing} (apt-get install -y python3-torch python3-sklearn python3-onnx python3-numpy)`;
}

/** `long`: under `npm run test:long` only (test/long.ts). */
const MODELS = [
  { name: 'promoter', script: 'train_promoter.py', data: 'ecoli_promoters.fasta', long: false },
  { name: 'splice', script: 'train_splice.py', data: 'statlog_splice_train.tsv', long: true },
];

describe('training reproduces the shipped artefacts', () => {
  const missing = missingPackages();
  for (const m of MODELS) {
    const data = join(DATA_DIR, m.data);
    if (existsSync(data) && missing && process.env.CI) throw new Error(missing);
    const skip =
      (m.long && LONG_SKIP) || (!existsSync(data) ? `training data not found at ${data}` : (missing ?? false));
    it(
      `${m.name}: a quick retrain writes model.onnx and test_vectors.json with the shipped sha256`,
      { skip },
      async (t) => {
        const report = JSON.parse(readFileSync(join(BUILTIN_MODELS_DIR, m.name, 'training_report.json'), 'utf8'));
        assert.equal(sha256(data), report.data.sha256, `${data} is not the file the shipped model was trained on`);
        const out = mkdtempSync(join(tmpdir(), `isomodel-train-${m.name}-`));
        try {
          const started = Date.now();
          await run(PYTHON, [join(PACKAGE_ROOT, 'training', m.script), '--final-only', '--data', data, '--out', out], {
            timeout: 600_000,
            maxBuffer: 16 * 1024 * 1024,
          });
          t.diagnostic(`${m.script} --final-only: ${((Date.now() - started) / 1000).toFixed(0)} s`);
          for (const file of ['model.onnx', 'test_vectors.json']) {
            assert.equal(
              sha256(join(out, file)),
              sha256(join(BUILTIN_MODELS_DIR, m.name, file)),
              `${m.name}/${file} differs from the retrained one`,
            );
          }
          assert.equal(sha256(join(out, 'model.onnx')), report.onnx.sha256);
        } finally {
          rmSync(out, { recursive: true, force: true });
        }
      },
    );
  }

  // digits trains on scikit-learn's bundled copy of the data: nothing to fetch, so never skipped on CI.
  if (missing && process.env.CI) throw new Error(missing);
  it(
    'digits: a quick retrain writes model.onnx and holdout.json with the shipped sha256',
    { skip: LONG_SKIP || (missing ?? false) },
    async (t) => {
      const report = JSON.parse(readFileSync(join(BUILTIN_MODELS_DIR, 'digits', 'training_report.json'), 'utf8'));
      const out = mkdtempSync(join(tmpdir(), 'isomodel-train-digits-'));
      try {
        const started = Date.now();
        await run(PYTHON, [join(PACKAGE_ROOT, 'training', 'train_digits.py'), '--final-only', '--out', out], {
          timeout: 900_000,
          maxBuffer: 16 * 1024 * 1024,
        });
        t.diagnostic(`train_digits.py --final-only: ${((Date.now() - started) / 1000).toFixed(0)} s`);
        for (const file of ['model.onnx', 'holdout.json']) {
          assert.equal(
            sha256(join(out, file)),
            sha256(join(BUILTIN_MODELS_DIR, 'digits', file)),
            `digits/${file} differs from the retrained one`,
          );
        }
        assert.equal(sha256(join(out, 'model.onnx')), report.onnx.sha256);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  );
});
