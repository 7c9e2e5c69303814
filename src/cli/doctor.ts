// `isomodel doctor`: what this machine can run, and what is missing. The isolation checks say
// which levels work here and why not where not (docs/security.md).
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config/config.js';
import { CgroupManager } from '../drivers/cgroups.js';
import {
  accessProblem,
  dropArgs,
  planPrivileges,
  SYSTEM_PYTHON,
  whichCommand,
  type Privileges,
} from '../drivers/privilege.js';
import { findBwrap } from '../drivers/sandbox.js';
import { defaultWorkDir } from '../drivers/workspace.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { discoverPackages, type ModelPackage } from '../manifest/load.js';
import { weightsOf } from '../manifest/weights.js';
import { missingRequirements } from '../manifest/requires.js';

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
}

function version(cmd: string, args: string[] = ['--version']): string | null {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
        .trim()
        .split('\n')[0] ?? ''
    );
  } catch {
    return null;
  }
}

/** Runs a command; null when it succeeded, else the last line it printed (or why it did not run). */
function tryRun(cmd: string, args: string[], timeout = 10_000): string | null {
  try {
    execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout, cwd: '/' });
    return null;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return (err.stderr || err.message).trim().split('\n').slice(-1)[0]!.slice(0, 300);
  }
}

/** GET /_ping on the engine's unix socket, from a child process (doctor stays synchronous). */
function dockerPing(socket: string): string | null {
  if (!existsSync(socket)) return `${socket} does not exist`;
  const script = `const s=require('net').connect(process.argv[1]);let d='';s.setTimeout(3000,()=>{console.error('no answer within 3 s');process.exit(2)});s.on('error',e=>{console.error(e.message);process.exit(1)});s.on('connect',()=>s.write('GET /_ping HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n'));s.on('data',c=>d+=c);s.on('end',()=>{if(/ 200 /.test(d.split('\\r\\n')[0]))process.exit(0);console.error(d.split('\\r\\n')[0]||'empty answer');process.exit(1)});`;
  return tryRun(process.execPath, ['-e', script, socket], 6000);
}

function isolationChecks(config: Config, cg: CgroupManager): Check[] {
  const checks: Check[] = [];
  const euid = process.geteuid?.() ?? -1;
  checks.push({
    name: 'process',
    ok: true,
    required: false,
    detail: 'isolation process: a child process per replica, scrubbed environment, its own scratch dir',
  });

  const plan = planPrivileges(config.worker_user, euid);
  let drop: Privileges | null = null;
  if ('error' in plan) {
    checks.push({ name: 'privileges', ok: false, required: true, detail: plan.error });
  } else if (plan.drop === null) {
    checks.push({
      name: 'privileges',
      ok: false,
      required: false,
      detail:
        'why' in plan && plan.why
          ? plan.why
          : `the gateway runs as uid ${euid}, not root: workers run as that same user, so nothing keeps them from the gateway's own files (state dir, keys, its environ)`,
    });
  } else {
    const p = plan.drop;
    const why = tryRun(dropArgs(p)[0]!, [...dropArgs(p).slice(1), '/bin/true']);
    const who = `${p.identity.name} (${p.identity.uid}:${p.identity.gid})`;
    checks.push({
      name: 'privileges',
      ok: why === null,
      required: true,
      detail:
        why === null
          ? `workers run as ${who}: no supplementary groups, no capabilities, no_new_privs (${p.setpriv})`
          : `setpriv cannot drop to ${who}: ${why}`,
    });
    if (why === null) drop = p;
  }

  const caps = cg.capabilities();
  const kill =
    caps.version === 'v2'
      ? caps.kill
        ? 'cgroup.kill'
        : 'SIGKILL over cgroup.procs (no cgroup.kill: Linux < 5.14)'
      : caps.freezer
        ? 'freeze, SIGKILL, thaw (freezer)'
        : 'SIGKILL over cgroup.procs (no freezer hierarchy)';
  checks.push({
    name: 'cgroups',
    ok: caps.version !== 'none',
    required: false,
    detail:
      caps.version === 'none'
        ? `${config.cgroups ? 'not writable' : 'off in the config'}: memory limits fall back to rlimits + RSS watchdog; unload and crashes kill the process group and every process carrying the launch's marker`
        : `${caps.version} writable: kernel-enforced memory/CPU limits; unload and crashes kill the whole group: ${kill}`,
  });

  if (!drop) {
    checks.push({
      name: 'network ns',
      ok: false,
      required: false,
      detail:
        'needs the gateway to run as root: process workers share the host network, so they can reach the gateway API (with auth off, as admin)',
    });
  } else if (!drop.unshare || !drop.netns) {
    const why = drop.unshare
      ? 'the gateway lacks CAP_SYS_ADMIN / CAP_NET_ADMIN'
      : 'unshare (util-linux) is not installed';
    checks.push({
      name: 'network ns',
      ok: false,
      required: true,
      detail: `${why}: process workers with network: none cannot start`,
    });
  } else {
    const why = tryRun(drop.unshare, [
      '--net',
      '--',
      drop.ip ?? '/bin/true',
      ...(drop.ip ? ['link', 'set', 'lo', 'up'] : []),
    ]);
    checks.push({
      name: 'network ns',
      ok: why === null,
      required: true,
      detail:
        why !== null
          ? `unshare --net fails: ${why}`
          : `process workers get a network namespace of their own (network: none)${drop.ip ? ', loopback up' : '; ip (iproute2) is missing, so its loopback stays down'}`,
    });
  }

  const bwrap = findBwrap();
  if (!bwrap) {
    checks.push({
      name: 'sandbox',
      ok: false,
      required: false,
      detail: 'bwrap is not installed (apt-get install bubblewrap): isolation sandbox models cannot load',
    });
  } else {
    // The same namespaces a sandboxed worker gets, as the user it runs as.
    const probe = [
      '--unshare-all',
      '--unshare-user',
      '--uid',
      '65534',
      '--gid',
      '65534',
      '--cap-drop',
      'ALL',
      '--die-with-parent',
      '--ro-bind',
      '/',
      '/',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--',
      '/bin/true',
    ];
    const why = drop ? tryRun(dropArgs(drop)[0]!, [...dropArgs(drop).slice(1), bwrap, ...probe]) : tryRun(bwrap, probe);
    const as = drop ? `as ${drop.identity.name}` : `as uid ${euid}`;
    checks.push({
      name: 'sandbox',
      ok: why === null,
      required: false,
      detail:
        why === null
          ? `${version(bwrap) ?? 'bwrap'}: user, pid, net, ipc, uts and cgroup namespaces work ${as}`
          : `bwrap ${as} cannot create its namespaces (user namespaces disabled?): ${why}`,
    });
  }

  const ping = dockerPing(config.docker.socket);
  checks.push({
    name: 'docker api',
    ok: ping === null,
    required: false,
    detail:
      ping === null
        ? `reachable at ${config.docker.socket}: isolation docker available`
        : `not reachable at ${config.docker.socket}: ${ping}`,
  });

  checks.push({
    name: 'inline',
    ok: true,
    required: false,
    detail: config.inline_models.length
      ? `allowed only for ${config.inline_models.join(', ')} (code inside the gateway process)`
      : 'refused for every model (inline_models is empty)',
  });

  if (drop) {
    const workDir = config.work_dir ?? defaultWorkDir(config.state_dir);
    let existing = workDir;
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    const problem = accessProblem(existing, drop.identity, 'x');
    checks.push({
      name: 'work dir',
      ok: problem === null,
      required: true,
      detail:
        problem === null
          ? `${workDir}: reachable by ${drop.identity.name}`
          : `${workDir}: not reachable by ${drop.identity.name}: ${problem}; set work_dir elsewhere`,
    });
    const py = whichCommand(config.python);
    const pyProblem = py ? accessProblem(py, drop.identity, 'x') : `${config.python} not found`;
    const fallback = pyProblem !== null && accessProblem(SYSTEM_PYTHON, drop.identity, 'x') === null;
    checks.push({
      name: 'py worker',
      ok: pyProblem === null || fallback,
      required: false,
      detail:
        pyProblem === null
          ? `${py}: runnable by ${drop.identity.name}`
          : fallback
            ? `${config.python} is not runnable by ${drop.identity.name} (${pyProblem}): workers use ${SYSTEM_PYTHON}`
            : `${config.python}: ${pyProblem}`,
    });
  }
  return checks;
}

export async function runDoctor(config: Config): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: major >= 20, required: true, detail: `${process.version} (need >= 20)` });
  const py = version(config.python);
  checks.push({
    name: 'python',
    ok: py !== null,
    required: true,
    detail: py ? `${config.python}: ${py}` : `${config.python} not found (needed for Python models)`,
  });
  const cg = config.cgroups ? CgroupManager.detect() : CgroupManager.disabled();
  checks.push(...isolationChecks(config, cg));
  for (const [tool, args] of [
    ['docker', ['--version']],
    ['bwrap', ['--version']],
    ['promtool', ['--version']],
  ] as const) {
    const v = version(tool, [...args]);
    checks.push({ name: tool, ok: v !== null, required: false, detail: v ?? 'not installed (optional)' });
  }
  try {
    mkdirSync(config.state_dir, { recursive: true, mode: 0o700 });
    accessSync(config.state_dir, constants.W_OK);
    checks.push({ name: 'state dir', ok: true, required: true, detail: `${config.state_dir} writable` });
  } catch (e) {
    checks.push({
      name: 'state dir',
      ok: false,
      required: true,
      detail: `${config.state_dir}: ${(e as Error).message}`,
    });
  }
  const found = discoverPackages(config.models_dir);
  checks.push({
    name: 'models',
    ok: found.errors.length === 0,
    required: false,
    detail: `${found.packages.length} valid in ${config.models_dir}${found.errors.length ? `; invalid: ${found.errors.map((e) => e.message).join(' | ')}` : ''}`,
  });
  checks.push(...modelChecks(config, found.packages), ...(await requirementChecks(config, found.packages)));
  return checks;
}

/** Python packages that need torch (a `torch` line in their requirements.txt), by interpreter. */
function torchUsers(packages: ModelPackage[], config: Config): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of packages) {
    if (p.manifest.runtime !== 'python') continue;
    let req = '';
    try {
      req = readFileSync(join(p.dir, 'requirements.txt'), 'utf8');
    } catch {
      continue;
    }
    if (!/^\s*torch\b/m.test(req)) continue;
    const py = p.manifest.python ?? config.python;
    out.set(py, [...(out.get(py) ?? []), p.manifest.name]);
  }
  return out;
}

/** Host software each package's manifest `requires` (docker packages bring their own image). */
async function requirementChecks(config: Config, packages: ModelPackage[]): Promise<Check[]> {
  const declared = packages.filter((p) => p.manifest.requires && p.manifest.isolation !== 'docker');
  const found = await Promise.all(
    declared.map((p) => missingRequirements(p.manifest, config.model_env[p.manifest.name])),
  );
  return declared.map((p, i) => {
    const r = found[i];
    return {
      name: `packages ${p.manifest.name}`,
      ok: r === null,
      required: false,
      detail: r ? `the model stays needs_packages until then: ${r.hint}` : 'host software present',
    };
  });
}

/** What the installed models need from this machine: torch, their weights, the default model. */
function modelChecks(config: Config, packages: ModelPackage[]): Check[] {
  const checks: Check[] = [];
  // torch for the interpreters the torch models run on (the built-in adapters: /usr/bin/python3).
  const users = torchUsers(packages, config);
  if (!users.size) users.set(SYSTEM_PYTHON, []);
  for (const [py, models] of users) {
    const v = version(py, ['-c', 'import torch; print(torch.__version__)']);
    const who = models.length ? ` (for ${models.join(', ')})` : '';
    checks.push({
      name: 'torch',
      ok: v !== null,
      required: false,
      detail:
        v !== null
          ? `${py}: torch ${v}${who}`
          : `${py} cannot import torch${who}: apt-get install -y python3-torch python3-numpy`,
    });
  }
  // Each package that declares weights outside itself: where it looks, and whether anything is there.
  for (const p of packages) {
    const w = weightsOf(p.manifest, config.model_env[p.manifest.name]);
    if (!w) continue;
    checks.push({
      name: `weights ${p.manifest.name}`,
      ok: w.present,
      required: false,
      detail: w.present
        ? `${w.env}=${w.path}`
        : `${w.env}=${w.path ?? '(unset)'}: ${w.path ? 'missing or empty' : 'not set'}; the model stays needs_weights until then: ${w.hint}`,
    });
  }
  const def = config.default_model;
  if (def !== undefined) {
    const here = packages.some((p) => p.manifest.name === def);
    checks.push({
      name: 'default',
      ok: here,
      required: false,
      detail: here
        ? `default_model ${def}`
        : `default_model "${def}" is not in ${config.models_dir}: the root routes answer for the first model by name`,
    });
  }
  return checks;
}
