// Installs the `isomodel/*` resolve hook (sdk-hooks.ts) in this process, once.
import { register } from 'node:module';

let installed = false;

export function installSdkResolver(): void {
  if (installed) return;
  installed = true;
  register(new URL('./sdk-hooks.js', import.meta.url));
}
