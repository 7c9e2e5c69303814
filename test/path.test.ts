// `isomodel` as a command (issue 23): after the install, `npm link` puts it on the PATH with no
// download (a link to this checkout), as the README says; the command then runs from any shell.
// How fast it starts is a bench line (`npm run bench -- cli`), not an assertion here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { cleanEnv } from './serve-process.js';
import { workerTmpDir } from './helpers.js';

const run = promisify(execFile);

describe('isomodel on the PATH through npm link', { timeout: 120_000 }, () => {
  const prefix = workerTmpDir('isomodel-npm-prefix-');
  after(() => rmSync(prefix, { recursive: true, force: true }));
  // npm's global prefix in a temp dir: the machine's own global packages are left alone.
  // --offline: linking a checkout downloads nothing; --ignore-scripts: the build is already done.
  const env = cleanEnv({
    npm_config_prefix: prefix,
    PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}:/usr/bin:/bin`,
  });

  it('npm link makes `isomodel` a command that runs this checkout', async () => {
    await run('npm', ['link', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: PACKAGE_ROOT, env });
    const bin = join(prefix, 'bin', 'isomodel');
    assert.ok(existsSync(bin), `${bin} after npm link`);
    assert.equal(realpathSync(bin), realpathSync(join(PACKAGE_ROOT, 'bin', 'isomodel.js')), readlinkSync(bin));
    // Found on the PATH by name, as a shell would: from the repository root it lists the built-in models.
    const help = await run('isomodel', ['--help'], { cwd: tmpdir(), env });
    assert.match(help.stdout, /^Usage: isomodel /);
    const ls = await run('isomodel', ['ls', '--url', 'http://127.0.0.1:9'], { cwd: PACKAGE_ROOT, env });
    assert.match(ls.stdout, /^promoter\s+\d+\.\d+\.\d+\s+onnx\s+not running/m);
  });
});
