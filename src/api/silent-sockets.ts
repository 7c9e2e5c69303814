// Shutdown must not wait on clients that connected and never sent a byte (a fetch pool's spare
// socket, a port scanner, a slowloris). Node counts such a socket as busy rather than idle, so
// Fastify's close() (which ends idle keep-alive sockets) waited for headersTimeout: 60 s or more.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export function closeSilentSocketsOnClose(app: FastifyInstance): void {
  const open = new Set<Socket>();
  const server: Server = app.server;
  server.on('connection', (s: Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  });
  app.addHook('preClose', async () => {
    // bytesRead counts what the HTTP parser consumed from the handle: 0 means no request began.
    for (const s of open) if (s.bytesRead === 0) s.destroy();
  });
}
