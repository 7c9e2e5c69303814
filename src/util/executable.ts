// Whether a path is a file this process may execute (PATH lookups, bwrap, host commands): a
// directory has the x bit too, and is no command.
import { accessSync, constants, statSync } from 'node:fs';

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
