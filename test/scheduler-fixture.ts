// What the scheduler's unit files (registry-unit, registry-traffic-unit, containers-unit,
// deployment-unit) set up alike: temp dirs removed when the file ends, package folders of a model
// the in-memory workers of fake-worker.ts serve, a logger whose lines the test reads, and a way to
// let queued callbacks run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';

export type LogLine = Record<string, unknown>;

const made: string[] = [];

/** A fresh temp dir, removed by removeTempDirs(). */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** A dir made some other way, removed with the temp dirs. */
export function removeAtEnd(dir: string): void {
  made.push(dir);
}

/** Removes every dir tempDir() made (the file's `after` hook). */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Writes a package folder `<models>/<folder>` for model `name` at `version`: a Node model with one
 * task, echo (fake workers answer it); `extra` manifest lines are appended.
 */
export function writeEchoPackage(
  models: string,
  folder: string,
  name: string,
  version: string,
  extra: string[] = [],
): string {
  const dir = join(models, folder);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'index.mjs'), 'export default {};\n');
  writeFileSync(
    join(dir, 'model.yaml'),
    [
      `name: ${name}`,
      `version: "${version}"`,
      'runtime: node',
      'entry: index.mjs',
      'tasks:',
      '  - { name: echo, sequence_types: [DNA], max_length: 100 }',
      ...extra,
    ].join('\n') + '\n',
  );
  return dir;
}

/** An info-level logger that appends each line, parsed, to `lines`. */
export function loggerInto(lines: LogLine[]): Logger {
  return pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
}

/** Lets promise callbacks and queued microtasks run. */
export async function flush(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}
