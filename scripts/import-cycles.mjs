#!/usr/bin/env node
// Import cycles among src/**/*.ts, read from the sources (no build, no dependency). Prints each
// strongly connected group of files that import each other, twice: counting every import, then
// counting runtime imports only (`import type` and `export type` lines are erased by tsc).
// Usage: node scripts/import-cycles.mjs [--runtime] [src]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const args = process.argv.slice(2);
const root = resolve(args.find((a) => !a.startsWith('--')) ?? 'src');

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** The relative modules a file imports: [{to, typeOnly}]. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const out = [];
  const re =
    /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[4] ?? m[5];
    // `import { type A, type B }`: every name type-only.
    const names = m[3] ?? '';
    const braces = names.match(/^\{([\s\S]*)\}$/);
    const allTypes = braces
      ? braces[1]
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .every((s) => s.startsWith('type '))
      : false;
    const to = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    out.push({ to, typeOnly: Boolean(m[2]) || allTypes, dynamic: Boolean(m[5]) });
  }
  return out;
}

function cycles(graph) {
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const groups = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const g = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        g.push(w);
      } while (w !== v);
      if (g.length > 1 || (graph.get(v) ?? []).includes(v)) groups.push(g.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return groups;
}

const all = files(root);
const edges = new Map(all.map((f) => [f, importsOf(f)]));
const show = (label, keep) => {
  const graph = new Map(
    all.map((f) => [
      f,
      edges
        .get(f)
        .filter(keep)
        .map((e) => e.to),
    ]),
  );
  const groups = cycles(graph);
  console.log(`${label}: ${groups.length} cycle group(s)`);
  for (const g of groups) console.log(`  ${g.length} files: ${g.map((f) => relative(root, f)).join(', ')}`);
  return groups.length;
};
const n = args.includes('--runtime') ? 0 : show('every import', () => true);
const r = show('runtime imports (type-only left out; dynamic import() kept)', (e) => !e.typeOnly);
process.exitCode = n + r > 0 ? 1 : 0;
