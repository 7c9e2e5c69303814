// isolation: sandbox — a model inside bubblewrap cannot reach the gateway over the network, read
// files outside its package, see the gateway's environment or processes, or outgrow its memory.
// Needs bwrap (CI installs it): without it these tests fail and say how to install it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BWRAP_MISSING, findBwrap, sandboxCommand } from '../src/drivers/sandbox.js';
import { gatewayTag, stateTag } from '../src/drivers/reap.js';
import { manifestSchema } from '../src/manifest/schema.js';
import { pidAlive, startGateway, waitFor, type Harness } from './helpers.js';

const SECRET_VAR = 'ISOMODEL_SANDBOX_TEST_SECRET';
const probe = (options: Record<string, unknown>) => ({ sequence: 'ACGT', options });

function requireBwrap(): void {
  assert.ok(findBwrap(), 'bubblewrap (bwrap) is not installed; the sandbox tests need it: apt-get install bubblewrap');
}

/** Every descendant of pid, read from /proc/<pid>/task/<tid>/children on the host. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(/\s+/).filter(Boolean).map(Number)) {
        out.push(k);
        walk(k);
      }
    }
  };
  walk(pid);
  return out;
}

describe('sandbox isolation: command line', () => {
  const pkg = {
    dir: '/srv/models/m',
    fingerprint: 'x',
    manifest: manifestSchema.parse({
      name: 'm',
      version: '1',
      runtime: 'node',
      entry: 'index.mjs',
      isolation: 'sandbox',
      tasks: [{ name: 't', sequence_types: ['DNA'] }],
    }),
  };
  const cmd = { command: '/usr/bin/node', args: ['host.js', '/srv/models/m/index.mjs'], selfLimited: true };

  it('wraps the worker in bwrap with every namespace, no capabilities and one writable dir', () => {
    const w = sandboxCommand(cmd, { pkg, scratch: '/state/run/m/r1', bwrap: '/usr/bin/bwrap' });
    assert.equal(w.command, '/usr/bin/bwrap');
    const a = w.args.join(' ');
    for (const flag of ['--unshare-all', '--unshare-user', '--cap-drop ALL', '--die-with-parent', '--remount-ro /'])
      assert.ok(a.includes(flag), flag);
    assert.ok(a.includes('--ro-bind /srv/models/m /srv/models/m'), 'package read-only');
    assert.ok(a.includes('--bind /state/run/m/r1 /state/run/m/r1 --chdir /state/run/m/r1'), 'scratch writable, cwd');
    assert.equal(w.args.filter((x) => x === '--bind').length, 1, 'only the scratch dir is writable');
    assert.deepEqual(w.args.slice(-3), ['/usr/bin/node', 'host.js', '/srv/models/m/index.mjs']);
    assert.ok(!a.includes('--setenv'), 'the environment is inherited, never on the command line');
    assert.equal(w.selfLimited, true);
  });

  it('without bwrap, the worker fails saying how to install it', () => {
    const w = sandboxCommand(cmd, { pkg, scratch: '/s', bwrap: null });
    assert.match(w.args.join(' '), /apt-get install bubblewrap/);
    assert.ok(w.args.includes(BWRAP_MISSING));
  });
});

describe('sandbox isolation (Python model in bubblewrap)', () => {
  let h: Harness;
  let port: number;
  let outside: string;
  before(async () => {
    requireBwrap();
    process.env[SECRET_VAR] = 'do-not-leak';
    h = await startGateway(['sandbox-py']);
    port = h.gw.address().port;
    outside = join(h.stateDir, 'outside-secret.txt');
    writeFileSync(outside, 'gateway-only secret\n');
  });
  after(async () => {
    delete process.env[SECRET_VAR];
    await h?.close();
  });

  const run = async (options: Record<string, unknown>): Promise<any> => {
    const r = await h.post('/predict', probe(options));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data;
  };
  const workerPid = async (): Promise<number> => (await h.get('/health/detailed')).body.data.models[0].replicas[0]?.pid;

  it('a normal prediction works', async () => {
    assert.equal((await run({ action: 'ok' })).length, 4);
  });

  it('cannot open a socket to the gateway on 127.0.0.1', async () => {
    // The gateway answers on that port from here…
    assert.equal((await h.get('/health/live')).status, 200);
    // …but the sandbox has a network namespace of its own: its loopback is not the host's.
    const r = await run({ action: 'connect', port });
    assert.equal(r.ok, false, JSON.stringify(r));
    assert.match(r.error, /refused|unreachable|Errno/i);
  });

  it('cannot read files outside its package; can read its own', async () => {
    for (const path of [
      outside,
      join(h.stateDir, 'isomodel.db'),
      '/etc/shadow',
      '/root/.bashrc',
      join(h.modelsDir, '..'),
    ]) {
      const r = await run({ action: 'read', path });
      assert.equal(r.ok, false, `${path} was readable: ${JSON.stringify(r)}`);
    }
    const own = await run({ action: 'read', path: join(h.modelsDir, 'sandbox-py', 'model.yaml') });
    assert.equal(own.ok, true, JSON.stringify(own));
    assert.match(own.value, /sandbox-py/);
  });

  it('can write only to its scratch dir', async () => {
    // Read-only binds and the read-only root refuse the write outright.
    for (const path of [join(h.modelsDir, 'sandbox-py', 'dropped.txt'), '/dropped.txt', '/usr/dropped.txt']) {
      const r = await run({ action: 'write', path });
      assert.equal(r.ok, false, `${path} was writable`);
    }
    // The state dir is not mounted: the path exists inside only as a directory of the sandbox's
    // private /tmp (a tmpfs), so a write may succeed there but never reaches the host's file.
    const stateFile = join(h.stateDir, 'dropped.txt');
    await run({ action: 'write', path: stateFile });
    assert.equal(existsSync(stateFile), false, 'a write reached the gateway state dir');
    const me = await run({ action: 'whoami' });
    assert.equal(me.scratch_write.ok, true, JSON.stringify(me.scratch_write));
    assert.ok(me.cwd.startsWith(join(h.gw.config.work_dir!, 'run') + '/') && me.cwd.includes('/sandbox-py/'), me.cwd);
    assert.equal(me.home, me.cwd);
    assert.equal(me.uid, 65534, 'runs as nobody in its user namespace');
    assert.equal(me.hostname, 'isomodel-sandbox');
    // Only what was bound shows: /root at most as the way to the interpreter (pyenv), no /home,
    // and of /etc only the few files a runtime reads.
    assert.equal(me.listing['/home'], null);
    assert.ok(
      (me.listing['/root'] ?? []).every((e: string) => e === '.pyenv'),
      JSON.stringify(me.listing['/root']),
    );
    for (const secret of ['shadow', 'gshadow', 'ssh', 'environment'])
      assert.ok(!me.listing['/etc'].includes(secret), `/etc/${secret} is visible`);
  });

  it("cannot see the gateway's environment variables", async () => {
    const { env } = await run({ action: 'env' });
    assert.equal(env[SECRET_VAR], undefined);
    assert.ok(!Object.values(env).includes('do-not-leak'));
    assert.equal(env.ISOMODEL_MODEL_NAME, 'sandbox-py', 'its own variables are there');
    assert.equal(env.ISOMODEL_CGROUP_PROCS, undefined);
  });

  it("has its own PID namespace: cannot see the gateway's process", async () => {
    const { pids, self } = await run({ action: 'procs' });
    assert.ok(self <= 3, `worker is pid ${self} in its namespace`);
    assert.ok(pids.length <= 4, `sees only its own processes: ${pids.join(' ')}`);
    const hostPid = await workerPid();
    assert.notEqual(hostPid, self);
    assert.ok(!pids.includes(process.pid) || process.pid <= 4, 'the gateway (this test process) is not visible');
  });

  it('is in its replica cgroup when the machine has writable cgroups', async (t) => {
    const version = h.gw.cgroups.version;
    if (version === 'none') return t.skip('no writable cgroups here');
    const kids = descendants(await workerPid());
    assert.ok(kids.length >= 1, 'bwrap has started the sandboxed worker');
    for (const k of kids)
      assert.match(readFileSync(`/proc/${k}/cgroup`, 'utf8'), /isomodel\/[0-9a-f]{12}-\d+\.\d+-sandbox-py-/);
  });

  it('is killed when it exceeds its memory limit, reported, and replaced', async () => {
    const r = await h.post('/predict', probe({ action: 'hog', mb: 512 }));
    assert.equal(r.status, 500, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /memory limit exceeded \(128 MB\)/);
    assert.equal((await run({ action: 'ok' })).length, 4);
  });

  it('dies whole when the gateway kills it (bwrap, its init and the model)', async () => {
    const pid = await workerPid();
    const kids = descendants(pid);
    assert.ok(kids.length >= 1);
    // Only bwrap itself: --die-with-parent and the PID namespace take the rest down.
    process.kill(pid, 'SIGKILL');
    await waitFor(() => [pid, ...kids].every((p) => !pidAlive(p)), 10_000);
    await waitFor(async () => (await h.post('/predict', probe({ action: 'ok' }))).status === 200, 30_000, 100);
  });

  it('leaves no cgroup behind once unloaded', async (t) => {
    const version = h.gw.cgroups.version;
    if (version === 'none') return t.skip('no writable cgroups here');
    const root = version === 'v1' ? '/sys/fs/cgroup/memory/isomodel' : '/sys/fs/cgroup/isomodel';
    const mine = (): string[] =>
      readdirSync(root).filter((d) => d.startsWith(`${stateTag(h.stateDir)}-${gatewayTag()}-sandbox-py-`));
    assert.ok(mine().length >= 1, 'the replica has a cgroup while it runs');
    assert.equal((await h.post('/v1/models/sandbox-py/unload')).status, 200);
    await waitFor(() => mine().length === 0, 15_000, 50);
  });
});

describe('sandbox isolation (Node model in bubblewrap)', () => {
  let h: Harness;
  let outside: string;
  before(async () => {
    requireBwrap();
    process.env[SECRET_VAR] = 'do-not-leak';
    h = await startGateway(['sandbox-node']);
    outside = join(h.stateDir, 'outside-secret.txt');
    writeFileSync(outside, 'gateway-only secret\n');
  });
  after(async () => {
    delete process.env[SECRET_VAR];
    await h?.close();
  });

  const run = async (options: Record<string, unknown>): Promise<any> => {
    const r = await h.post('/predict', probe(options));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data;
  };

  it('serves predictions, and is confined like the Python one', async () => {
    assert.equal((await run({})).length, 4);
    const read = await run({ action: 'read', path: outside });
    assert.equal(read.ok, false, JSON.stringify(read));
    const own = await run({ action: 'read', path: join(h.modelsDir, 'sandbox-node', 'model.yaml') });
    assert.equal(own.ok, true, JSON.stringify(own));
    const dial = await run({ action: 'connect', port: h.gw.address().port });
    assert.equal(dial.ok, false, JSON.stringify(dial));
    const { env } = await run({ action: 'env' });
    assert.equal(env[SECRET_VAR], undefined);
    const { pids, self } = await run({ action: 'procs' });
    assert.ok(self <= 3 && pids.length <= 4, JSON.stringify({ pids, self }));
  });
});
