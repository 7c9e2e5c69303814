// The floor of process isolation, for the overhead benchmark: a bare Node HTTP server that hands
// every request to a child process over a pipe (one line out, one line back) before answering,
// with no framework, validation, queue or metrics. What it adds over bench/bare-server.ts is the
// cost of the process hop alone on this machine.
import { spawn } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import { LineSplitter } from '../src/worker/protocol.js';

if (process.argv[2] === 'child') {
  const lines = new LineSplitter((line) => process.stdout.write(`${line}\n`));
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => lines.push(d));
} else {
  const port = Number(process.argv[2] ?? 0);
  const body = process.argv[3] ?? '{}';
  const child = spawn(process.execPath, [process.argv[1]!, 'child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, ServerResponse>();
  let next = 0;
  const lines = new LineSplitter((line) => {
    const id = Number(line);
    const res = waiting.get(id);
    waiting.delete(id);
    res
      ?.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
      .end(body);
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => lines.push(d));
  createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = next++;
      waiting.set(id, res);
      child.stdin.write(`${id}\n`);
    });
  }).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}
