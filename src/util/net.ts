// A port that is free on loopback right now, for servers started as separate processes
// (tests, benchmarks). The usual bind-to-0-and-close race is acceptable there.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
