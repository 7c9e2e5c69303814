// The request log's caller for an HTTP request: its request id and the client's address.
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../inference/outcome.js';

export function callerOf(req: FastifyRequest): Caller {
  return { requestId: req.id, client: req.ip };
}
