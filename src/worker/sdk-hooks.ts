// ESM resolve hook (runs on Node's loader thread): `isomodel/<module>` imported by model code
// resolves to this runtime's own SDK modules, wherever the model package lives on disk. The
// host provides the SDK to the model, as Triton's Python stub provides its utilities.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const SDK_MODULES: Record<string, string> = {
  'isomodel/worker': './node-model.js',
  'isomodel/encoding': './encoding.js',
};

interface ResolveResult {
  url: string;
  shortCircuit?: boolean;
  format?: string | null;
}
type NextResolve = (specifier: string, context: unknown) => Promise<ResolveResult>;

export async function resolve(specifier: string, context: unknown, nextResolve: NextResolve): Promise<ResolveResult> {
  const local = SDK_MODULES[specifier];
  if (local) return { url: new URL(local, import.meta.url).href, shortCircuit: true, format: 'module' };
  const fromEnv = envParent(specifier, (context as { parentURL?: string }).parentURL);
  if (fromEnv) return nextResolve(specifier, { ...(context as object), parentURL: fromEnv });
  return nextResolve(specifier, context);
}

// Per-model node_modules (src/envs/node.ts): the gateway installs a package's dependencies
// outside the package and names them in ISOMODEL_NODE_MODULES. A bare specifier imported by the
// model's own code (not by a dependency, whose nested node_modules must keep winning) resolves
// from there first, when the env has that package; anything else resolves as usual.
const ENV_MODULES = process.env.ISOMODEL_NODE_MODULES;
const MODEL_DIRS = modelDirUrls(process.env.ISOMODEL_MODEL_DIR);

function modelDirUrls(dir: string | undefined): string[] {
  if (!dir) return [];
  const urls = [pathToFileURL(dir).href];
  try {
    urls.push(pathToFileURL(realpathSync(dir)).href);
  } catch {
    // the worker fails on its own if the package dir is gone
  }
  return urls.map((u) => (u.endsWith('/') ? u : `${u}/`));
}

function envParent(specifier: string, parentURL: string | undefined): string | null {
  if (!ENV_MODULES || !parentURL || /^(\.{0,2}\/|[a-z][a-z0-9+.-]*:|#)/i.test(specifier)) return null;
  const inModel = MODEL_DIRS.find((d) => parentURL.startsWith(d));
  if (!inModel || parentURL.slice(inModel.length).includes('node_modules/')) return null;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (!existsSync(join(ENV_MODULES, name))) return null;
  // Resolve as if imported from a file beside the env's node_modules.
  return pathToFileURL(join(dirname(ENV_MODULES), 'isomodel-env.mjs')).href;
}
