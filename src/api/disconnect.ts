// Cancellation on client disconnect, for every route that queues model work: a client that goes
// away before its answer is written cancels what is still queued (and the worker's batch, if
// nobody else waits on it) instead of leaving it to run.
import type { FastifyReply } from 'fastify';
import { CancelToken, type CancelSignal } from '../scheduler/cancel.js';

export async function cancelOnDisconnect<T>(
  reply: FastifyReply,
  work: (signal: CancelSignal) => Promise<T>,
): Promise<T> {
  const token = new CancelToken();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) token.abort();
  };
  reply.raw.on('close', onClose);
  try {
    return await work(token);
  } finally {
    reply.raw.off('close', onClose);
  }
}
