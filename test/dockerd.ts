// A private Docker engine for tests: dockerd (Debian docker.io) with its own data root, exec root
// and socket under a temp dir, no bridge and no iptables, so it touches neither the host's
// network nor another engine on the machine. Images are made locally (nothing can be pulled).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { PACKAGE_ROOT } from '../src/paths.js';
import { sleep } from './helpers.js';

function findExecutable(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

/** Why a private engine cannot run here, or null when it can be tried. */
export function dockerdUnavailable(): string | null {
  if (!findExecutable('dockerd')) return 'dockerd is not installed (Debian/Ubuntu: apt-get install docker.io)';
  if (process.getuid?.() !== 0) return 'dockerd needs root, and the tests do not run as root';
  return null;
}

export interface Engine {
  docker: Docker;
  socket: string;
  /** Environment for the docker CLI / make-base-image.sh against this engine. */
  env: NodeJS.ProcessEnv;
  log(): string;
  stop(): Promise<void>;
}

export async function startDockerd(timeoutMs = 60_000): Promise<Engine> {
  const dockerd = findExecutable('dockerd')!;
  // Short: the socket path must fit in sockaddr_un (108 bytes).
  const root = mkdtempSync('/tmp/isomodel-dockerd-');
  const socket = join(root, 'docker.sock');
  const logFile = join(root, 'dockerd.log');
  const out = openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    dockerd,
    [
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--data-root',
      join(root, 'data'),
      '--exec-root',
      join(root, 'exec'),
      '--host',
      `unix://${socket}`,
      '--pidfile',
      join(root, 'dockerd.pid'),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', out, out] },
  );
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let exited = false;
  child.on('exit', () => (exited = true));
  // If this test process is killed outright, its after() never runs: a watchdog stops dockerd
  // (which stops its containers) once this process is gone.
  const watchdog = spawn(
    '/bin/sh',
    [
      '-c',
      'while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -TERM "$2" 2>/dev/null',
      'isomodel-dockerd-watchdog',
      String(process.pid),
      String(child.pid),
    ],
    { stdio: 'ignore' },
  );
  watchdog.unref();
  const docker = new Docker({ socketPath: socket });
  const stop = async (): Promise<void> => {
    watchdog.kill('SIGKILL');
    if (!exited) {
      child.kill('SIGTERM');
      for (let i = 0; i < 150 && !exited; i++) await sleep(100);
      if (!exited) child.kill('SIGKILL');
    }
    rmSync(root, { recursive: true, force: true });
  };
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      await docker.ping();
      break;
    } catch {
      if (exited || Date.now() > end) {
        const tail = log().split('\n').slice(-15).join('\n');
        await stop();
        throw new Error(
          `dockerd did not start (${exited ? 'it exited' : `not answering after ${timeoutMs} ms`}):\n${tail}`,
        );
      }
      await sleep(200);
    }
  }
  const cli = findExecutable('docker');
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, ...(cli ? { DOCKER: cli } : {}) };
  return { docker, socket, env, log, stop };
}

/** Runs deploy/docker/make-base-image.sh for a flavour against the engine. */
export function makeBaseImage(engine: Engine, flavour: 'node' | 'python'): string {
  return execFileSync(join(PACKAGE_ROOT, 'deploy', 'docker', 'make-base-image.sh'), [flavour], {
    env: engine.env,
    encoding: 'utf8',
    timeout: 120_000,
  }).trim();
}

/** Removes every container the engine has (the tests' own engine: nothing else lives there). */
export async function removeAllContainers(docker: Docker): Promise<void> {
  for (const c of await docker.listContainers({ all: true }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
}

/** A compose implementation's argv prefix (`docker compose` or `docker-compose`), or null. */
export function composeCommand(): string[] | null {
  const docker = findExecutable('docker');
  const legacy = findExecutable('docker-compose');
  for (const argv of [docker ? [docker, 'compose'] : null, legacy ? [legacy] : null]) {
    if (!argv) continue;
    try {
      execFileSync(argv[0]!, [...argv.slice(1), 'version'], { stdio: 'ignore', timeout: 20_000 });
      return argv;
    } catch {
      // not this one
    }
  }
  return null;
}
