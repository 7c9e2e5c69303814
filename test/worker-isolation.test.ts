// Least-privilege workers (docs/security.md), through real gateways and real workers:
// what a hostile model can and cannot reach under process and sandbox isolation when the gateway
// runs as root (the gateway's environ, /etc/shadow, the state db, other packages, the admin API),
// the refusals that keep workers from writing packages or running inline, the state dir's
// modes, and that unload, a crash or a gateway killed with SIGKILL leave no process (setsid
// daemons included) and no cgroup behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CgroupManager } from '../src/drivers/cgroups.js';
import {
  planPrivileges,
  resolveWorkerUser,
  whichCommand,
  accessProblem,
  writablePackagePath,
} from '../src/drivers/privilege.js';
import { stateTag, tagAlive } from '../src/drivers/reap.js';
import { secureStateDir } from '../src/drivers/workspace.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import {
  FIXTURES_DIR,
  freePort,
  makeModelsDir,
  pidAlive,
  request,
  sleep,
  startGateway,
  waitFor,
  workerTmpDir,
  type Harness,
} from './helpers.js';

const ROOT = process.geteuid?.() === 0;
const NOT_ROOT = 'the gateway must run as root for workers to drop privileges (the machine and CI do)';
const SECRET_VAR = 'ISOMODEL_PROBE_SECRET';

/** A copy of the probe-py fixture under another name, isolation and network. */
function addProbe(
  modelsDir: string,
  name: string,
  isolation: 'process' | 'sandbox',
  network: 'none' | 'host' = 'none',
): string {
  const dir = join(modelsDir, name);
  cpSync(join(FIXTURES_DIR, 'probe-py'), dir, { recursive: true });
  const yaml = readFileSync(join(dir, 'model.yaml'), 'utf8')
    .replace(/^name: probe-py$/m, `name: ${name}`)
    .replace(/^isolation: process$/m, `isolation: ${isolation}\nnetwork: ${network}`);
  writeFileSync(join(dir, 'model.yaml'), yaml);
  return dir;
}

/** Pids whose command line holds `needle` (the daemons the probe starts: `sleep 3000.<tag>`). */
function findProcesses(needle: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').includes(needle)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

/** Session id of a process (field 6 of /proc/<pid>/stat). */
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** The cgroup (v1 memory / v2 unified) a process is in, as named under /sys/fs/cgroup. */
function cgroupOf(pid: number): string | null {
  const text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const m = /^\d+:memory:(.*)$/m.exec(text) ?? /^0::(.*)$/m.exec(text);
  return m ? m[1]! : null;
}

function cgroupDir(version: string, group: string): string {
  return version === 'v1' ? join('/sys/fs/cgroup/memory', group) : join('/sys/fs/cgroup', group);
}

const probe = (options: Record<string, unknown>) => ({ sequence: 'ACGT', options });

/** An isomodel gateway as a child process (`isomodel serve`), its output kept. */
class ChildGateway {
  child!: ChildProcess;
  output = '';
  url = '';
  constructor(
    readonly modelsDir: string,
    readonly stateDir: string,
    readonly env: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.child = spawn(
      process.execPath,
      [
        join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
        '--models-dir',
        this.modelsDir,
        '--state-dir',
        this.stateDir,
        'serve',
        '--port',
        String(port),
        '--no-watch',
      ],
      {
        cwd: this.stateDir.replace(/\/[^/]+$/, ''),
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/root',
          ISOMODEL_RATE_LIMIT: '0',
          ISOMODEL_LOG_LEVEL: 'info',
          ...this.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString()).slice(-200_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    await waitFor(
      async () => {
        if (this.child.exitCode !== null) throw new Error(`serve exited ${this.child.exitCode}: ${this.output}`);
        try {
          return (await fetch(`${this.url}/health/ready`)).ok;
        } catch {
          return false;
        }
      },
      120_000,
      100,
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  post(path: string, body: unknown): Promise<{ status: number; body: any }> {
    return request<any>(this.url + path, 'POST', body);
  }

  get(path: string): Promise<{ status: number; body: any }> {
    return request<any>(this.url + path, 'GET');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    await gone;
  }
}

describe(
  'least-privilege workers: what a hostile model reaches (gateway as root)',
  { timeout: 240_000, skip: ROOT ? false : NOT_ROOT },
  () => {
    let root: string;
    let modelsDir: string;
    let stateDir: string;
    let gw: ChildGateway;
    const secret = `s3cret-${randomBytes(8).toString('hex')}`;

    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'isomodel-isolation-'));
      chmodSync(root, 0o755); // workers (nobody) must reach the packages and the work dir
      modelsDir = join(root, 'models');
      stateDir = join(root, 'state');
      mkdirSync(modelsDir);
      addProbe(modelsDir, 'probe-process', 'process');
      addProbe(modelsDir, 'probe-sandbox', 'sandbox');
      addProbe(modelsDir, 'probe-host', 'process', 'host');
      // The secret is in the gateway's initial environment, where /proc/<pid>/environ shows it.
      gw = new ChildGateway(modelsDir, stateDir, { [SECRET_VAR]: secret, ISOMODEL_HOST_NETWORK_MODELS: 'probe-host' });
      await gw.start();
    });

    after(async () => {
      await gw?.stop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    const targets = (own: string, other: string) => ({
      gateway_pid: gw.pid,
      port: Number(new URL(gw.url).port),
      state_db: join(stateDir, 'isomodel.db'),
      own_package: join(modelsDir, own),
      other_package: join(modelsDir, other),
    });

    async function runProbe(
      model: string,
      other: string,
    ): Promise<Record<string, { ok: boolean; value?: unknown; error?: string }>> {
      const r = await gw.post(`/models/${model}/predict`, probe({ action: 'probe', targets: targets(model, other) }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data;
    }

    const workerPid = async (model: string): Promise<number> => {
      const d = await gw.get('/health/detailed');
      return d.body.data.models.find((m: any) => m.name === model).replicas[0].pid;
    };

    it('the gateway really holds the secret in its environ (the probe below is meaningful)', () => {
      assert.ok(readFileSync(`/proc/${gw.pid}/environ`, 'utf8').includes(`${SECRET_VAR}=${secret}`));
    });

    it('process: runs as nobody with no groups, no capabilities, no_new_privs, in its own network namespace', async () => {
      const pid = await workerPid('probe-process');
      const st = status(pid);
      assert.match(st.Uid!, /^65534\s+65534\s+65534\s+65534$/);
      assert.match(st.Gid!, /^65534\s+65534\s+65534\s+65534$/);
      assert.equal(st.Groups, '');
      assert.equal(st.CapEff, '0000000000000000');
      assert.equal(st.CapBnd, '0000000000000000');
      assert.equal(st.NoNewPrivs, '1');
      assert.notEqual(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'own network namespace');
      const me = (await gw.post('/models/probe-process/predict', probe({ action: 'whoami' }))).body.data;
      assert.deepEqual([me.uid, me.gid, me.groups], [65534, 65534, []]);
      // Its scratch dir is in the work dir, 0700 and its own; the state dir is not on its way.
      assert.ok(me.cwd.startsWith(`${stateDir}-work/run/`), me.cwd);
      const scratch = statSync(me.cwd);
      assert.deepEqual([scratch.uid, scratch.mode & 0o777], [65534, 0o700]);
      // The interpreter is one nobody can run (python3 on PATH may be a pyenv shim under /root, 0700).
      assert.equal(accessProblem(me.executable, resolveWorkerUser('nobody'), 'rx'), null);
      const onPath = whichCommand('python3');
      if (onPath && accessProblem(onPath, resolveWorkerUser('nobody'), 'x') !== null) {
        assert.equal(me.executable, realpathSync('/usr/bin/python3'));
        assert.match(
          gw.output,
          /python interpreter python3 cannot be run by worker user nobody \(uid 65534\); workers use \/usr\/bin\/python3/,
        );
      }
    });

    it('process: cannot read the gateway environ, /etc/shadow or the state db, signal the gateway, write any package or call the admin API', async () => {
      const p = await runProbe('probe-process', 'probe-sandbox');
      for (const k of [
        'gateway_environ',
        'signal_gateway',
        'shadow',
        'state_db',
        'other_package_write',
        'other_package_modify',
        'own_package_write',
      ]) {
        assert.equal(p[k]!.ok, false, `${k}: ${JSON.stringify(p[k])}`);
        assert.match(p[k]!.error!, /PermissionError/, `${k}: ${p[k]!.error}`);
      }
      // Its network namespace has only its own loopback: the gateway's port is not there.
      assert.equal(p.admin_api!.ok, false, JSON.stringify(p.admin_api));
      assert.match(p.admin_api!.error!, /ConnectionRefused|unreachable/i);
      // Documented limit: process isolation does not hide world-readable files, such as other packages.
      assert.equal(p.other_package_read!.ok, true, JSON.stringify(p.other_package_read));
      assert.match(String(p.other_package_read!.value), /name: probe-sandbox/);
    });

    it('sandbox: runs as nobody on the host too, and sees none of it', async () => {
      const pid = await workerPid('probe-sandbox'); // bwrap, exec'd through setpriv
      const st = status(pid);
      assert.match(st.Uid!, /^65534\s/);
      assert.equal(st.NoNewPrivs, '1');
      const p = await runProbe('probe-sandbox', 'probe-process');
      for (const k of [
        'gateway_environ',
        'signal_gateway',
        'shadow',
        'state_db',
        'other_package_read',
        'other_package_write',
        'other_package_modify',
        'own_package_write',
        'admin_api',
      ]) {
        assert.equal(p[k]!.ok, false, `${k}: ${JSON.stringify(p[k])}`);
      }
      // Not there at all (its own PID namespace and file system view), rather than refused.
      assert.match(p.gateway_environ!.error!, /FileNotFoundError|No such file/);
      assert.match(p.signal_gateway!.error!, /ProcessLookupError/);
      assert.match(p.shadow!.error!, /FileNotFoundError/);
      assert.match(p.state_db!.error!, /FileNotFoundError/);
      assert.match(p.other_package_read!.error!, /FileNotFoundError/);
      assert.match(p.own_package_write!.error!, /Read-only file system|PermissionError/);
      assert.match(p.admin_api!.error!, /ConnectionRefused|unreachable/i);
    });

    it('network: host (documented): a process worker on the host network reaches the admin API when auth is off', async () => {
      const p = await runProbe('probe-host', 'probe-process');
      assert.deepEqual(p.admin_api, { ok: true, value: 200 });
      // Everything else stays refused.
      for (const k of ['gateway_environ', 'shadow', 'state_db', 'other_package_write', 'own_package_write'])
        assert.equal(p[k]!.ok, false, k);
    });

    it('no probe left a file in any package', () => {
      for (const m of ['probe-process', 'probe-sandbox', 'probe-host']) {
        assert.equal(existsSync(join(modelsDir, m, 'dropped.txt')), false, m);
        assert.equal(
          readFileSync(join(modelsDir, m, 'model.py'), 'utf8'),
          readFileSync(join(FIXTURES_DIR, 'probe-py', 'model.py'), 'utf8'),
          m,
        );
      }
    });

    it('the state dir is 0700 and its database files 0600; the work dir lets workers through, not list', () => {
      assert.equal(statSync(stateDir).mode & 0o777, 0o700);
      const dbFiles = readdirSync(stateDir).filter((f) => /\.db(-wal|-shm)?$/.test(f));
      assert.ok(dbFiles.includes('isomodel.db'));
      for (const f of dbFiles) assert.equal(statSync(join(stateDir, f)).mode & 0o777, 0o600, f);
      assert.equal(statSync(`${stateDir}-work`).mode & 0o777, 0o711);
      assert.equal(statSync(`${stateDir}-work/run`).mode & 0o777, 0o711);
    });
  },
);

describe('least-privilege workers: refusals with the path and the fix', { timeout: 120_000 }, () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });
  const start = async (dir: string, overrides = {}): Promise<Harness> => {
    const h = await startGateway([], { models_dir: dir, ...overrides });
    harnesses.push(h);
    return h;
  };

  it('a package file the worker user could write is refused, named', async (t) => {
    if (!ROOT) return t.skip(NOT_ROOT);
    const dir = makeModelsDir(['probe-py']);
    chmodSync(join(dir, 'probe-py', 'model.py'), 0o666);
    const h = await start(dir);
    assert.equal(h.gw.registry.status('probe-py'), 'failed');
    assert.match(
      h.gw.registry.lastError('probe-py') ?? '',
      new RegExp(
        `${join(dir, 'probe-py', 'model.py')} is mode 0666.*writable by worker user nobody \\(uid 65534\\).*chmod go-w`,
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('a models dir the worker user cannot enter is refused, named', async (t) => {
    if (!ROOT) return t.skip(NOT_ROOT);
    const dir = makeModelsDir(['probe-py']);
    chmodSync(dir, 0o700);
    const h = await start(dir);
    assert.equal(h.gw.registry.status('probe-py'), 'failed');
    assert.match(
      h.gw.registry.lastError('probe-py') ?? '',
      new RegExp(
        `worker user nobody \\(uid 65534\\) cannot read ${join(dir, 'probe-py')} \\(${dir} is mode 0700.*chmod o\\+rX`,
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('a work dir the worker user cannot reach is refused, named', async (t) => {
    if (!ROOT) return t.skip(NOT_ROOT);
    const hidden = mkdtempSync(join(tmpdir(), 'isomodel-hidden-')); // 0700
    const dir = makeModelsDir(['probe-py']);
    const h = await start(dir, { work_dir: join(hidden, 'work') });
    assert.equal(h.gw.registry.status('probe-py'), 'failed');
    assert.match(
      h.gw.registry.lastError('probe-py') ?? '',
      new RegExp(`work_dir ${join(hidden, 'work')} cannot be reached by worker user nobody.*${hidden} is mode 0700`),
    );
    rmSync(hidden, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('worker_user must name an unprivileged user', () => {
    assert.throws(() => resolveWorkerUser('root'), /is root/);
    assert.throws(() => resolveWorkerUser('0'), /is root/);
    assert.throws(() => resolveWorkerUser('no-such-user-here'), /not a user in \/etc\/passwd/);
    assert.deepEqual(resolveWorkerUser('nobody'), { name: 'nobody', uid: 65534, gid: 65534 });
    assert.deepEqual(resolveWorkerUser('12345:54321'), { name: '12345', uid: 12345, gid: 54321 });
    assert.deepEqual(planPrivileges('nobody', 1000), { drop: null }, 'not root: nothing to drop');
    assert.match((planPrivileges('root', 0) as { error: string }).error, /is root/);
    // Root without the capabilities to switch users (a container with cap_drop ALL): no drop, and why.
    const capless = planPrivileges('nobody', 0, 0n) as { drop: null; why: string };
    assert.equal(capless.drop, null);
    assert.match(capless.why, /without CAP_SETUID, CAP_SETGID and CAP_CHOWN/);
    // Able to switch users but not to make a network namespace: said per worker, at load.
    const noNetns = planPrivileges('nobody', 0, (1n << 0n) | (1n << 6n) | (1n << 7n)) as { drop: { netns: boolean } };
    assert.equal(noNetns.drop.netns, false);
  });

  it('network: host runs only for models listed in host_network_models', async () => {
    const dir = makeModelsDir(['probe-py']);
    const yaml = join(dir, 'probe-py', 'model.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8') + '\nnetwork: host\n');
    const refused = await start(dir);
    assert.equal(refused.gw.registry.status('probe-py'), 'failed');
    assert.match(
      refused.gw.registry.lastError('probe-py') ?? '',
      /network: host.*only models listed in the config's host_network_models may\. Add probe-py there/,
    );
    const allowed = await start(dir, { host_network_models: ['probe-py'] });
    assert.equal(allowed.gw.registry.status('probe-py'), 'ready');
    rmSync(dir, { recursive: true, force: true });
  });

  it('inline isolation runs only for models listed in inline_models', async () => {
    const dir = makeModelsDir(['inline-node']);
    const refused = await start(dir);
    assert.equal(refused.gw.registry.status('inline-node'), 'failed');
    assert.match(
      refused.gw.registry.lastError('inline-node') ?? '',
      /isolation inline.*only models listed in the config's inline_models may\. Add inline-node to inline_models/,
    );
    const r = await refused.post('/models/inline-node/predict', { sequence: 'mkvlaa' });
    assert.equal(r.status, 503);
    const allowed = await start(dir, { inline_models: ['inline-node'] });
    const ok = await allowed.post('/models/inline-node/predict', { sequence: 'mkvlaa' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.data.pid, process.pid);
  });
});

describe('the state dir of an older version is locked down at start', () => {
  it('0700, database files 0600, old scratch dirs inside it removed; what it says', () => {
    const state = workerTmpDir('isomodel-old-state-');
    try {
      for (const f of ['isomodel.db', 'isomodel.db-wal', 'isomodel.db-shm'])
        writeFileSync(join(state, f), 'x', { mode: 0o644 });
      mkdirSync(join(state, 'run', 'm', 'r1'), { recursive: true });
      mkdirSync(join(state, 'envs', 'python'), { recursive: true });
      const notes = secureStateDir(state);
      assert.equal(statSync(state).mode & 0o777, 0o700);
      for (const f of ['isomodel.db', 'isomodel.db-wal', 'isomodel.db-shm'])
        assert.equal(statSync(join(state, f)).mode & 0o777, 0o600, f);
      assert.equal(existsSync(join(state, 'run')), false);
      assert.ok(
        notes.some((n) => /envs is no longer used/.test(n)),
        notes.join(' | '),
      );
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe("a manifest's environment reaches only the worker, never what starts it", { timeout: 120_000 }, () => {
  // LD_DEBUG_OUTPUT makes the dynamic loader of every process that has it write <prefix>.<pid>:
  // a file owned by root would be the launcher (running as root) obeying the package; a file on
  // the host at all for the sandbox would be bwrap (outside its sandbox) obeying it (inside, /tmp
  // is the sandbox's own). LD_PRELOAD of a library in the package would run its code there.
  let h: Harness;
  let dir: string;
  const prefix = `isomodel-ld-${randomBytes(6).toString('hex')}`;
  const written = (m: string): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith(`${prefix}-${m}.`));
  before(async () => {
    dir = makeModelsDir(['probe-py']);
    addProbe(dir, 'probe-sandbox', 'sandbox');
    for (const m of ['probe-py', 'probe-sandbox']) {
      const file = join(dir, m, 'model.yaml');
      writeFileSync(
        file,
        `${readFileSync(file, 'utf8')}env:\n  LD_DEBUG: files\n  LD_DEBUG_OUTPUT: /tmp/${prefix}-${m}\n`,
      );
    }
    h = await startGateway([], { models_dir: dir });
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
    for (const f of readdirSync(tmpdir()).filter((f) => f.startsWith(prefix)))
      rmSync(join(tmpdir(), f), { force: true });
  });

  it("process: only the worker user's processes see it (none of the root launcher)", async () => {
    assert.equal((await h.post('/models/probe-py/predict', probe({ action: 'ok' }))).status, 200);
    const files = written('probe-py');
    assert.ok(files.length > 0, 'the worker itself has its environment');
    const owners = files.map((f) => statSync(join(tmpdir(), f)).uid);
    assert.ok(
      owners.every((u) => u === (ROOT ? 65534 : process.getuid!())),
      `owners: ${owners.join(' ')}`,
    );
  });

  it('sandbox: only processes inside the sandbox see it (bwrap does not)', async () => {
    const r = await h.post('/models/probe-sandbox/predict', probe({ action: 'ok' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(written('probe-sandbox'), []);
  });
});

describe(
  'an interpreter a package names (model.yaml python) never runs as root',
  { timeout: 120_000, skip: ROOT ? false : NOT_ROOT },
  () => {
    let h: Harness;
    let dir: string;
    const log = join(tmpdir(), `isomodel-pyshim-${randomBytes(6).toString('hex')}`);
    before(async () => {
      dir = makeModelsDir([]);
      const pkg = addProbe(dir, 'probe-sandbox', 'sandbox');
      // Records who runs it, then is a normal interpreter.
      writeFileSync(join(pkg, 'pyshim'), `#!/bin/sh\nid -u >> ${log} 2>/dev/null\nexec /usr/bin/python3 "$@"\n`, {
        mode: 0o755,
      });
      writeFileSync(
        join(pkg, 'model.yaml'),
        `${readFileSync(join(pkg, 'model.yaml'), 'utf8')}python: ${join(pkg, 'pyshim')}\n`,
      );
      writeFileSync(log, '', { mode: 0o666 });
      chmodSync(log, 0o666);
      h = await startGateway([], { models_dir: dir });
    });
    after(async () => {
      await h?.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(log, { force: true });
    });

    it('is probed as the worker user, and the model serves', async () => {
      const r = await h.post('/models/probe-sandbox/predict', probe({ action: 'ok' }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const uids = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      assert.ok(uids.length >= 1, 'the gateway did run it (to check it and find its installation)');
      assert.deepEqual([...new Set(uids)], ['65534']);
    });
  },
);

describe(
  'per-model environments are built by the worker user and sealed for the gateway',
  { timeout: 180_000, skip: ROOT ? false : NOT_ROOT },
  () => {
    // A dependency the package names, with an install script: npm runs it during the build.
    let h: Harness;
    let dir: string;
    const log = join(tmpdir(), `isomodel-npm-script-${randomBytes(6).toString('hex')}`);
    before(async () => {
      dir = makeModelsDir([]);
      const pkg = join(dir, 'scripted-node');
      const dep = join(dir, 'dep-src', 'package');
      mkdirSync(dep, { recursive: true });
      writeFileSync(
        join(dep, 'package.json'),
        JSON.stringify({
          name: 'isodep',
          version: '1.0.0',
          type: 'module',
          main: 'index.js',
          scripts: { install: `id -u >> ${log}` },
        }),
      );
      writeFileSync(join(dep, 'index.js'), 'export const VERSION = "1.0.0";\n');
      mkdirSync(pkg);
      execFileSync('tar', ['-czf', join(pkg, 'isodep-1.0.0.tgz'), '-C', join(dir, 'dep-src'), 'package']);
      writeFileSync(
        join(pkg, 'package.json'),
        JSON.stringify({ type: 'module', dependencies: { isodep: 'file:./isodep-1.0.0.tgz' } }),
      );
      writeFileSync(
        join(pkg, 'index.mjs'),
        "import { VERSION } from 'isodep';\nexport function predict(batch) {\n  return batch.map(() => ({ lib: VERSION, uid: process.getuid() }));\n}\n",
      );
      writeFileSync(
        join(pkg, 'model.yaml'),
        'name: scripted-node\nversion: 0.0.1\nruntime: node\nentry: index.mjs\ntasks:\n  - name: t\n    sequence_types: [DNA]\n',
      );
      writeFileSync(log, '', { mode: 0o666 });
      chmodSync(log, 0o666);
      h = await startGateway([], { models_dir: dir });
    });
    after(async () => {
      await h?.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(log, { force: true });
    });

    it("runs a dependency's install script as the worker user, never root", async () => {
      const r = await h.post('/models/scripted-node/predict', { sequence: 'ACGT' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual([r.body.data.lib, r.body.data.uid], ['1.0.0', 65534]);
      assert.deepEqual(readFileSync(log, 'utf8').split('\n').filter(Boolean), ['65534']);
    });

    it('leaves the env owned by the gateway: nothing in it writable by the worker user, its build log 0600', () => {
      const root = join(h.gw.config.work_dir!, 'envs', 'node');
      const [env] = readdirSync(root).filter((d) => d.startsWith('scripted-node-') && !d.includes('.'));
      assert.ok(env, readdirSync(root).join(' '));
      const envDir = join(root, env!);
      assert.equal(statSync(envDir).uid, 0);
      assert.equal(writablePackagePath(envDir, resolveWorkerUser('nobody')), null);
      assert.equal(statSync(join(envDir, 'build.log')).mode & 0o777, 0o600);
      assert.equal(existsSync(`${envDir}.home`), false, 'the build HOME is gone');
    });
  },
);

/** Kill-tree tests for one configuration: the daemon a worker started dies with the worker. */
function treeSuite(title: string, model: 'probe-py' | 'probe-sandbox', overrides: Record<string, unknown>): void {
  describe(title, { timeout: 120_000 }, () => {
    let h: Harness;
    let dir: string;
    before(async () => {
      dir = makeModelsDir(['probe-py']);
      if (model === 'probe-sandbox') {
        rmSync(join(dir, 'probe-py'), { recursive: true });
        addProbe(dir, 'probe-sandbox', 'sandbox');
      }
      h = await startGateway([], { models_dir: dir, ...overrides });
    });
    after(async () => {
      await h?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const replica = async (): Promise<{ pid: number }> =>
      (await h.get('/health/detailed')).body.data.models[0].replicas[0];

    /** Starts a daemon; returns its pid and the worker's cgroup dir (null without cgroups). */
    async function startDaemon(): Promise<{ daemon: number; group: string | null }> {
      const tag = String(Date.now() % 1e9) + String(Math.floor(Math.random() * 1e6));
      const r = await h.post(`/models/${model}/predict`, probe({ action: 'daemon', tag }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const [daemon] = (await waitFor(() => {
        const p = findProcesses(`3000.${tag}`);
        return p.length ? p : null;
      }, 5000)) as number[];
      assert.ok(daemon && pidAlive(daemon));
      // It left the worker's session (and so its process group): a group kill alone misses it.
      assert.notEqual(sessionOf(daemon!), sessionOf((await replica()).pid));
      const version = h.gw.cgroups.version;
      const group = version === 'none' ? null : cgroupDir(version, cgroupOf(daemon)!);
      if (group) {
        assert.match(
          group,
          new RegExp(`/isomodel/${stateTag(h.stateDir)}-\\d+\\.\\d+-${model}-`),
          'the daemon is in its replica cgroup',
        );
        assert.ok(existsSync(group));
      }
      return { daemon: daemon!, group };
    }

    it('unload kills the daemon and removes the cgroup', async () => {
      const { daemon, group } = await startDaemon();
      const r = await h.post(`/v1/models/${model}/unload`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await waitFor(() => !pidAlive(daemon) || status(daemon).State?.startsWith('Z'), 10_000);
      if (group) await waitFor(() => !existsSync(group), 10_000);
      assert.equal((await h.post(`/v1/models/${model}/load`)).status, 200);
    });

    it('a crash kills the daemon and removes the cgroup; the replacement serves', async () => {
      const { daemon, group } = await startDaemon();
      const before = await replica();
      const r = await h.post(`/models/${model}/predict`, probe({ action: 'crash' }));
      assert.equal(r.status, 500, JSON.stringify(r.body));
      await waitFor(() => !pidAlive(daemon) || status(daemon).State?.startsWith('Z'), 10_000);
      if (group) await waitFor(() => !existsSync(group), 10_000);
      await waitFor(
        async () => (await h.post(`/models/${model}/predict`, probe({ action: 'ok' }))).status === 200,
        30_000,
        100,
      );
      assert.notEqual((await replica()).pid, before.pid);
    });
  });
}

treeSuite('unload and crash kill the whole tree: process worker in a cgroup', 'probe-py', {});
treeSuite('unload and crash kill the whole tree: process worker without cgroups (launch marker)', 'probe-py', {
  cgroups: false,
});
treeSuite('unload and crash kill the whole tree: sandbox worker', 'probe-sandbox', {});

describe(
  'a gateway killed with SIGKILL: the next one of the same state dir removes what it left',
  { timeout: 240_000 },
  () => {
    let root: string;
    const gateways: ChildGateway[] = [];
    after(async () => {
      // Gracefully: a SIGKILLed gateway here would leave its groups for no later gateway to remove.
      for (const g of gateways) await g.stop('SIGTERM').catch(() => undefined);
      if (root) {
        await CgroupManager.detect().reapStale(stateTag(join(root, 'state')), () => false);
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('old cgroups, their processes (daemons included) and scratch dirs are gone after the restart', async (t) => {
      const cg = CgroupManager.detect();
      if (cg.version === 'none') return t.skip('no writable cgroups on this machine');
      root = mkdtempSync(join(tmpdir(), 'isomodel-reap-'));
      chmodSync(root, 0o755);
      const modelsDir = join(root, 'models');
      const stateDir = join(root, 'state');
      mkdirSync(modelsDir);
      addProbe(modelsDir, 'probe-process', 'process');
      const first = new ChildGateway(modelsDir, stateDir);
      gateways.push(first);
      await first.start();
      const tag = String(Date.now() % 1e9);
      assert.equal((await first.post('/models/probe-process/predict', probe({ action: 'daemon', tag }))).status, 200);
      const [daemon] = (await waitFor(() => {
        const p = findProcesses(`3000.${tag}`);
        return p.length ? p : null;
      }, 5000)) as number[];
      const worker = (await first.get('/health/detailed')).body.data.models[0].replicas[0].pid as number;
      const prefix = `${stateTag(stateDir)}-${first.pid}.`;
      const groups = (): string[] => cg.groupNames().filter((n) => n.startsWith(prefix));
      assert.equal(groups().length, 1, 'one replica, one group');
      const scratchRoot = join(`${stateDir}-work`, 'run');
      const oldScratch = readdirSync(scratchRoot).filter((d) => d.startsWith(`${first.pid}.`));
      assert.equal(oldScratch.length, 1);

      await first.stop('SIGKILL');
      await sleep(300);
      // What a SIGKILLed gateway leaves: its group, with the daemon in it, and the scratch dir.
      assert.ok(pidAlive(daemon!), 'the daemon survived its gateway');
      assert.equal(groups().length, 1, 'its cgroup is still there');
      assert.ok(existsSync(join(scratchRoot, oldScratch[0]!)));

      const second = new ChildGateway(modelsDir, stateDir);
      gateways.push(second);
      await second.start();
      await waitFor(() => !pidAlive(daemon!) && !pidAlive(worker), 10_000);
      assert.deepEqual(groups(), [], "the old gateway's groups are removed");
      assert.equal(existsSync(join(scratchRoot, oldScratch[0]!)), false, 'and its scratch dirs');
      assert.match(second.output, /removed what an earlier gateway of this state dir left behind/);
      // The new gateway's own worker is in a group of its own and serves.
      assert.equal(cg.groupNames().filter((n) => n.startsWith(`${stateTag(stateDir)}-${second.pid}.`)).length, 1);
      assert.equal((await second.post('/models/probe-process/predict', probe({ action: 'ok' }))).status, 200);
    });
  },
);

describe('leftover groups of other state dirs: removed only when empty, their processes never touched', () => {
  it('a dead gateway of another state dir: its empty group goes, a busy one stays with its process', async (t) => {
    const cg = CgroupManager.detect();
    if (cg.version === 'none') return t.skip('no writable cgroups on this machine');
    const other = randomBytes(6).toString('hex');
    const dead = '1.1'; // pid 1 did not start at tick 1: no such gateway
    const empty = cg.create(`${other}-${dead}-m-r1-1`, { memoryMb: 64, cpus: 1 })!;
    const busy = cg.create(`${other}-${dead}-m-r2-2`, { memoryMb: 64, cpus: 1 })!;
    const sleeper = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    try {
      for (const f of busy.procsFiles) writeFileSync(f, String(sleeper.pid));
      const removed = await cg.reapStale(randomBytes(6).toString('hex'), tagAlive);
      assert.ok(removed.includes(`${other}-${dead}-m-r1-1`));
      assert.ok(!removed.includes(`${other}-${dead}-m-r2-2`));
      assert.ok(pidAlive(sleeper.pid!), 'not ours to kill');
      assert.deepEqual(busy.pids(), [sleeper.pid]);
      assert.ok(!cg.groupNames().includes(`${other}-${dead}-m-r1-1`));
    } finally {
      sleeper.kill('SIGKILL');
      await busy.killAll();
      for (let i = 0; i < 50 && !busy.destroy(); i++) await sleep(20);
      empty.destroy();
    }
  });
});

describe('isomodel doctor: which isolation levels this machine supports', () => {
  it('names each level, and why not where not', async () => {
    const work = workerTmpDir('isomodel-doctor-');
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
            '--models-dir',
            join(work, 'models'),
            '--state-dir',
            join(work, 'state'),
            'doctor',
            '--json',
          ],
          {
            cwd: work,
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              HOME: process.env.HOME ?? '/root',
              ISOMODEL_DOCKER_SOCKET: join(work, 'no-docker.sock'),
            },
          },
        );
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.on('error', reject);
        child.on('exit', () => resolve(text));
      });
      const checks = new Map(
        (JSON.parse(out) as { name: string; ok: boolean; detail: string }[]).map((c) => [c.name, c]),
      );
      for (const name of ['process', 'privileges', 'cgroups', 'network ns', 'sandbox', 'docker api', 'inline'])
        assert.ok(checks.has(name), `doctor reports ${name}`);
      assert.equal(checks.get('process')!.ok, true);
      // No engine behind that socket: not reachable, and it says where it looked.
      assert.equal(checks.get('docker api')!.ok, false);
      assert.match(checks.get('docker api')!.detail, /no-docker\.sock does not exist/);
      assert.match(checks.get('inline')!.detail, /refused for every model/);
      const cg = CgroupManager.detect();
      assert.equal(checks.get('cgroups')!.ok, cg.version !== 'none');
      if (cg.version === 'v1')
        assert.match(
          checks.get('cgroups')!.detail,
          cg.capabilities().freezer ? /v1 writable.*freeze, SIGKILL, thaw/ : /v1 writable.*SIGKILL over cgroup\.procs/,
        );
      if (ROOT) {
        // This machine (and CI) run as root with util-linux and bubblewrap: every level but docker.
        assert.match(checks.get('privileges')!.detail, /workers run as nobody \(65534:65534\).*no_new_privs/);
        assert.equal(checks.get('privileges')!.ok, true);
        assert.equal(checks.get('network ns')!.ok, true, checks.get('network ns')!.detail);
        assert.equal(checks.get('sandbox')!.ok, true, checks.get('sandbox')!.detail);
        assert.match(checks.get('sandbox')!.detail, /namespaces work as nobody/);
        assert.equal(checks.get('work dir')!.ok, true, checks.get('work dir')!.detail);
      } else {
        assert.equal(checks.get('privileges')!.ok, false);
        assert.match(checks.get('privileges')!.detail, /not root: workers run as that same user/);
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
