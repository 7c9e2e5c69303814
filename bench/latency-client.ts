// One client, one keep-alive connection, requests back to back: per-request latency with
// sub-millisecond resolution (what "added latency at concurrency 1" means), and the requests per
// second that one client gets.
// Usage: latency-client URL BODY COUNT [rotate]   (rotate: BODY is a JSON array of bodies, sent in turn)
import { Agent, request } from 'node:http';

const [url, bodyArg, countArg, mode] = process.argv.slice(2) as [string, string, string, string | undefined];
const count = Number(countArg);
const bodies = mode === 'rotate' ? (JSON.parse(bodyArg) as unknown[]).map((b) => JSON.stringify(b)) : [bodyArg];
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const target = new URL(url);

function once(body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(Number(process.hrtime.bigint() - t0) / 1e6)
            : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const samples: number[] = [];
for (let i = 0; i < Math.min(200, count); i++) await once(bodies[i % bodies.length]!); // warm-up: JIT, connection
const t0 = performance.now();
for (let i = 0; i < count; i++) samples.push(await once(bodies[i % bodies.length]!));
const seconds = (performance.now() - t0) / 1000;
samples.sort((a, b) => a - b);
const at = (p: number): number => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
process.stdout.write(JSON.stringify({ p50: at(0.5), p99: at(0.99), rps: count / seconds }));
agent.destroy();
