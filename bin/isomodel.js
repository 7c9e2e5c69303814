#!/usr/bin/env node
// Thin launcher: the CLI itself is compiled TypeScript under dist/ (`npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../dist/src/cli/index.js', import.meta.url));
if (!existsSync(cli)) {
  console.error('isomodel is not built yet: run `npm run build` (npm ci runs it for you).');
  process.exit(1);
}
const { main } = await import(cli);
await main(process.argv);
