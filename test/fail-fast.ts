// `it` for the unit files that mutation groups run once per mutant (test/mutation/groups.mjs):
// under Stryker (__STRYKER_ACTIVE_MUTANT__ set), the first test that fails or hangs past
// `limitMs` ends the run with exit code 1, so a mutant that breaks every test costs one test's
// time, not the sum of every test's wait (which Stryker would report as a timeout after a
// minute). Outside Stryker it is `it` with a per-test time limit.
import { it, type TestContext } from 'node:test';

const underStryker = process.env.__STRYKER_ACTIVE_MUTANT__ !== undefined;
// Taken before any test can install node:test's mock timers.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

export function failFastIt(limitMs: number) {
  return (name: string, fn: (t: TestContext) => Promise<void> | void): void => {
    it(name, { timeout: limitMs }, async (t) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          fn(t),
          new Promise<never>((_, reject) => {
            timer = realSetTimeout(() => reject(new Error(`test still running after ${limitMs} ms`)), limitMs - 50);
          }),
        ]);
      } catch (e) {
        if (underStryker) setImmediate(() => process.exit(1));
        throw e;
      } finally {
        realClearTimeout(timer);
      }
    });
  };
}
