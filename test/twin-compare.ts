// Compares the answers of a Python adapter and its ONNX twin (dnabert2 / dnabert2-onnx,
// lucaone / lucaone-onnx): same keys, same strings, booleans and integers, floats within a
// relative tolerance. Keeps the worst differences seen, for the suites to report.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Harness } from './helpers.js';
import { missingPythonModules } from './python-modules.js';

export const PYTHON = '/usr/bin/python3';
/** Relative differences are reported for values at least this large (near 0 they say nothing). */
const REL_FLOOR = 1e-2;

/** Null when /usr/bin/python3 imports torch, else why not (the suites skip then). */
export function torchProblem(): string | null {
  return missingPythonModules(PYTHON, ['torch']);
}

/** Runs a Python tool with one torch thread; its stdout, or an error with its stderr. */
export function runPython(args: string[]): string {
  const r = spawnSync(PYTHON, args, {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 300_000,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (r.status !== 0)
    throw new Error(
      `${args[0] === '-c' ? 'python -c' : args[0]} failed (${r.status ?? r.error?.message}): ${r.stderr}`,
    );
  return r.stdout;
}

// Runs each argv as `python3 argv...` would, one after another in one interpreter (a script's
// directory first on sys.path, its stdout captured, SystemExit honoured): the tools import torch,
// about 1.5 s of CPU a process, so a suite's checkpoints and references come from one process.
const BATCH = [
  'import contextlib, io, json, os, runpy, sys',
  'outs = []',
  'for argv in json.loads(sys.argv[1]):',
  '    sys.argv = list(argv)',
  '    here = os.path.dirname(os.path.abspath(argv[0]))',
  '    sys.path.insert(0, here)',
  '    buf = io.StringIO()',
  '    code = 0',
  '    with contextlib.redirect_stdout(buf):',
  '        try:',
  "            runpy.run_path(argv[0], run_name='__main__')",
  '        except SystemExit as e:',
  '            code = e.code',
  '    sys.path.remove(here)',
  '    if code not in (0, None):',
  "        sys.exit('%s failed: %s' % (' '.join(argv), code))",
  '    outs.append(buf.getvalue())',
  'json.dump(outs, sys.stdout)',
].join('\n');

/** runPython for several tool runs in one Python process; their stdouts, in order. */
export function runPythonBatch(runs: string[][]): string[] {
  return JSON.parse(runPython(['-c', BATCH, JSON.stringify(runs)])) as string[];
}

/** The model's own answer, without what the gateway adds around it. */
export function answer(data: Record<string, unknown>): Record<string, unknown> {
  const { processing_time: _t, model: _m, version: _v, task_type: _k, ...rest } = data;
  return rest;
}

export class Agreement {
  worstAbs = 0;
  worstRel = 0;
  floats = 0;

  constructor(
    readonly rtol: number,
    /** Below this absolute difference two floats are equal whatever their size (values near 0). */
    readonly atol = 1e-5,
  ) {}

  /** Asserts `onnx` equals `py` (the reference) structurally, floats within the tolerance. */
  same(py: unknown, onnx: unknown, where: string): void {
    if (typeof py === 'number' && typeof onnx === 'number') {
      if (Number.isInteger(py) && Number.isInteger(onnx)) {
        assert.equal(onnx, py, `${where}: ${onnx} vs ${py}`);
        return;
      }
      const diff = Math.abs(py - onnx);
      const rel = diff / Math.max(Math.abs(py), Math.abs(onnx), Number.MIN_VALUE);
      this.floats++;
      this.worstAbs = Math.max(this.worstAbs, diff);
      if (Math.max(Math.abs(py), Math.abs(onnx)) >= REL_FLOOR) this.worstRel = Math.max(this.worstRel, rel);
      assert.ok(diff <= this.atol || rel <= this.rtol, `${where}: ${onnx} vs ${py} (relative difference ${rel})`);
      return;
    }
    if (Array.isArray(py)) {
      assert.ok(Array.isArray(onnx), `${where}: not an array`);
      assert.equal(onnx.length, py.length, `${where}: length`);
      py.forEach((v, i) => this.same(v, onnx[i], `${where}[${i}]`));
      return;
    }
    if (py !== null && typeof py === 'object') {
      assert.ok(onnx !== null && typeof onnx === 'object', `${where}: not an object`);
      const a = py as Record<string, unknown>;
      const b = onnx as Record<string, unknown>;
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), `${where}: keys`);
      for (const k of Object.keys(a)) this.same(a[k], b[k], `${where}.${k}`);
      return;
    }
    assert.equal(onnx, py, where);
  }

  /**
   * The same request to a model and its ONNX twin: both answers, asserted equal (statuses and
   * error codes, or the answers without what the gateway adds), the reference's returned.
   */
  async both(
    h: Harness,
    models: { py: string; onnx: string },
    path: 'predict' | 'predict/batch',
    body: Record<string, unknown>,
  ): Promise<{ status: number; py: any; onnx: any }> {
    const [py, onnx] = await Promise.all([
      h.post(`/models/${models.py}/${path}`, body),
      h.post(`/models/${models.onnx}/${path}`, body),
    ]);
    assert.equal(
      onnx.status,
      py.status,
      `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(onnx.body).slice(0, 300)}`,
    );
    if (py.status !== 200) {
      assert.equal(onnx.body.error.code, py.body.error.code);
      return { status: py.status, py: py.body, onnx: onnx.body };
    }
    const a = path === 'predict' ? answer(py.body.data) : py.body.data.predictions;
    const b = path === 'predict' ? answer(onnx.body.data) : onnx.body.data.predictions;
    this.same(a, b, `${path} ${JSON.stringify(body).slice(0, 60)}`);
    return { status: 200, py: py.body.data, onnx: onnx.body.data };
  }

  toString(): string {
    return `${this.floats} floats compared: max |difference| ${this.worstAbs.toExponential(2)}, max relative difference ${this.worstRel.toExponential(2)} (values of magnitude >= ${REL_FLOOR})`;
  }
}
