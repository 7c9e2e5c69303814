// Where isomodel's own files live, whether run from dist/ or installed as a package.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('isomodel package root not found');
    dir = up;
  }
  return dir;
}

export const PACKAGE_ROOT = findRoot();
/** Compiled JavaScript (src/ and test/ under it). */
export const DIST_DIR = join(PACKAGE_ROOT, 'dist');
export const NODE_HOST = join(DIST_DIR, 'src', 'worker', 'node-host.js');
/** runtime http: the worker that proxies the protocol to the model's HTTP server. */
export const HTTP_ADAPTER = join(DIST_DIR, 'src', 'worker', 'http-adapter.js');
export const ONNX_HOST = join(DIST_DIR, 'src', 'worker', 'onnx-host.js');
export const PYTHON_SDK = join(PACKAGE_ROOT, 'sdk', 'python', 'isomodel_worker.py');
export const BUILTIN_MODELS_DIR = join(PACKAGE_ROOT, 'models');
/** The web console's page, script and stylesheet, served as they are (no build step). */
export const CONSOLE_STATIC_DIR = join(PACKAGE_ROOT, 'src', 'console', 'static');

/** isomodel's own version (package.json), for the protocols that announce it (OIP, MCP); 0.0.0 when unreadable. */
export const PACKAGE_VERSION: string = (() => {
  try {
    return (
      (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0'
    );
  } catch {
    return '0.0.0';
  }
})();
