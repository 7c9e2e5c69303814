// The README's test command does its own set-up (issue 23): `npm run test:setup` installs, with
// apt, exactly the packages the suite needs that are missing, and .ci/run calls the README's
// command as it is written. The script runs here for real, with dpkg and apt-get replaced on the
// PATH by recorders (nothing is installed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { workerTmpDir } from './helpers.js';

const run = promisify(execFile);
const SCRIPT = join(PACKAGE_ROOT, 'scripts', 'test-setup.sh');

describe('npm run test:setup', () => {
  const bin = workerTmpDir('isomodel-test-setup-');
  after(() => rmSync(bin, { recursive: true, force: true }));
  const log = join(bin, 'apt.log');
  /** dpkg -s says "not installed" for the packages in `missing`; apt-get records its arguments. */
  const stubs = (missing: string[]): void => {
    writeFileSync(join(bin, 'dpkg'), `#!/bin/sh\ncase " ${missing.join(' ')} " in *" $2 "*) exit 1;; esac\nexit 0\n`);
    writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "$@" >> ${log}\n`);
    for (const f of ['dpkg', 'apt-get']) chmodSync(join(bin, f), 0o755);
    writeFileSync(log, '');
  };
  const setup = () => run('bash', [SCRIPT], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: bin } });

  it('is the package.json script', () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts['test:setup'], 'bash scripts/test-setup.sh');
  });

  // As another user the script goes through sudo, which a test cannot stand in for.
  it(
    'installs only what is missing',
    { skip: process.getuid?.() === 0 ? false : 'not root: apt-get would run through sudo' },
    async () => {
      stubs(['emboss', 'chromium']);
      const out = await setup();
      assert.match(out.stdout, /installing emboss chromium/);
      const calls = readFileSync(log, 'utf8').trim().split('\n');
      assert.deepEqual(calls, ['update -qq', 'install -y -qq emboss chromium']);
    },
  );

  it('does nothing when everything is there', async () => {
    stubs([]);
    const out = await setup();
    assert.match(out.stdout, /every package the tests use is installed/);
    assert.equal(readFileSync(log, 'utf8'), '');
  });

  it('.ci/run runs the install, then exactly `npm run test:setup && npm test && npm run test:long`', () => {
    const ci = readFileSync(join(PACKAGE_ROOT, '.ci', 'run'), 'utf8').split('\n');
    const install = ci.findIndex((l) => /^npm ci\b/.test(l));
    const test = ci.indexOf('npm run test:setup && npm test && npm run test:long');
    assert.ok(install >= 0 && test > install, ci.join('\n'));
    assert.equal(ci.filter((l) => /^npm (?:test|run test)/.test(l)).length, 1);
  });
});
