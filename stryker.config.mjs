// Mutation testing (StrykerJS): `npm run mutate` (all groups) or `npm run mutate -- <group>...`.
// Each group mutates a few modules and runs only the test files that exercise them, through the
// command runner over `node --test`: Stryker builds the instrumented sandbox once (tsc), checks
// each mutant with the TypeScript checker, then runs the command once per mutant with
// __STRYKER_ACTIVE_MUTANT__ set. Reports per group in reports/mutation/. Too slow for CI; see
// docs/testing.md.
import { GROUPS } from './test/mutation/groups.mjs';

const name = process.env.MUTATE_GROUP ?? 'validation';
const group = GROUPS[name];
if (!group) throw new Error(`unknown MUTATE_GROUP ${name}; one of ${Object.keys(GROUPS).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  mutate: group.mutate,
  testRunner: 'command',
  commandRunner: {
    command: `node --test --test-concurrency=1 ${group.tests.map((t) => `dist/test/${t}.test.js`).join(' ')}`,
  },
  buildCommand: 'npx tsc -p tsconfig.json',
  // The TypeScript checker drops mutants that do not compile before any test runs. It costs about
  // 20 s a mutant on a loaded two-core machine; MUTATE_TYPECHECK=0 skips it (type-invalid mutants
  // then run as JavaScript: most are killed, and a survivor among them is listed as such).
  checkers: process.env.MUTATE_TYPECHECK === '0' ? [] : ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'off',
  // Two shared cores: one mutant at a time per core, and a generous timeout for gateway tests.
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 2),
  timeoutMS: 30_000,
  timeoutFactor: 2,
  // Off unless asked for (npm run mutate -- --incremental): the command runner reports one test
  // ("All tests"), so Stryker's incremental mode sees changes to the mutated code but not to the
  // tests, and would keep a survivor's old result after a test was added to kill it.
  incremental: process.env.MUTATE_INCREMENTAL === '1',
  incrementalFile: `reports/mutation/${name}.incremental.json`,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  ignorePatterns: ['dist', 'reports', '.isomodel', '.isomodel-work', 'training', 'clients', 'deploy'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 80, break: null },
};
