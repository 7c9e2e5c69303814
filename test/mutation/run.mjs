// `npm run mutate [-- group...]`: Stryker on each group of test/mutation/groups.mjs in turn
// (all of them by default), then each group's mutation score from its JSON report. Every mutant is
// tested each time; --incremental reuses reports/mutation/<group>.incremental.json for mutants
// whose code did not change (Stryker cannot see test changes through the command runner: after
// changing tests, run without it). See docs/testing.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { GROUPS } from './groups.mjs';

const args = process.argv.slice(2);
const incremental = args.includes('--incremental');
const names = args.filter((a) => !a.startsWith('--'));
for (const a of args)
  if (a.startsWith('--') && a !== '--incremental')
    throw new Error(`unknown option ${a}; the only one is --incremental`);
for (const n of names) if (!GROUPS[n]) throw new Error(`unknown group ${n}; one of ${Object.keys(GROUPS).join(', ')}`);
const groups = names.length ? names : Object.keys(GROUPS);

const stryker = process.env.STRYKER_BIN ?? 'node_modules/.bin/stryker';
let failed = false;
for (const g of groups) {
  console.log(`\n== mutation group ${g}: ${GROUPS[g].mutate.join(' ')} (tests: ${GROUPS[g].tests.join(', ')})`);
  const env = { ...process.env, MUTATE_GROUP: g, MUTATE_INCREMENTAL: incremental ? '1' : '0' };
  const r = spawnSync(stryker, ['run', 'stryker.config.mjs'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`stryker failed for group ${g} (exit ${r.status ?? r.signal})`);
    failed = true;
  }
}

/** Stryker's mutation score: (killed + timeout) / (killed + timeout + survived + no coverage). */
function score(report) {
  const n = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, CompileError: 0, RuntimeError: 0, Ignored: 0 };
  for (const f of Object.values(report.files)) for (const m of f.mutants) n[m.status] = (n[m.status] ?? 0) + 1;
  const detected = n.Killed + n.Timeout;
  const valid = detected + n.Survived + n.NoCoverage;
  return { ...n, score: valid ? (100 * detected) / valid : NaN };
}

console.log('\ngroup        killed timeout survived no-cov compile-err  score');
for (const g of Object.keys(GROUPS)) {
  const file = `reports/mutation/${g}.json`;
  if (!existsSync(file)) continue;
  const s = score(JSON.parse(readFileSync(file, 'utf8')));
  console.log(
    `${g.padEnd(12)} ${String(s.Killed).padStart(6)} ${String(s.Timeout).padStart(7)} ${String(s.Survived).padStart(8)} ${String(s.NoCoverage).padStart(6)} ${String(s.CompileError).padStart(11)} ${s.score.toFixed(1).padStart(6)}%`,
  );
}
process.exit(failed ? 1 : 0);
