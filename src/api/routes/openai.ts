// OpenAI-compatible endpoints, so OpenAI client libraries can call isomodel models:
//   POST /v1/embeddings        api/openai/embeddings.ts
//   POST /v1/chat/completions  api/openai/chat.ts
//   POST /v1/completions       api/openai/completions.ts
// (what they share: api/openai/common.ts; bodies and errors: api/openai-shapes.ts). Errors use
// OpenAI's shape {error:{message, type, param, code}} with the HTTP status of the isomodel code.
// GET /v1/models stays the native model list (see docs/openai-and-streaming.md).
import type { FastifyInstance } from 'fastify';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { toIsoError } from '../envelope.js';
import { PREDICT } from '../../security/route-scope.js';
import { sendOpenAiError } from '../openai-shapes.js';
import { chatCompletions } from '../openai/chat.js';
import { completions } from '../openai/completions.js';
import { embeddings } from '../openai/embeddings.js';

export function registerOpenAiRoutes(app: FastifyInstance, gw: GatewayContext): void {
  // An encapsulated scope, so that its error handler (OpenAI's error shape) covers these
  // routes only, including body-parser and rate-limit errors.
  void app.register(async (scope) => {
    scope.setErrorHandler((e, req, reply) => {
      const err = toIsoError(e);
      if (err.code === 'INTERNAL_ERROR' && !(e instanceof IsoError))
        req.log.error({ err: e, reqId: req.id }, 'unhandled error');
      return sendOpenAiError(reply, err);
    });
    scope.post('/v1/embeddings', PREDICT, (req, reply) => embeddings(gw, req, reply));
    scope.post('/v1/chat/completions', PREDICT, (req, reply) => chatCompletions(gw, req, reply));
    scope.post('/v1/completions', PREDICT, (req, reply) => completions(gw, req, reply));
  });
}
