// Admin views of the security state: the audit log and the API keys (never their secrets).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { okEnvelope } from '../envelope.js';
import { admin } from '../../security/route-scope.js';

const auditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    actor: z.string().max(64).optional(),
    action: z.string().max(64).optional(),
    outcome: z.enum(['allowed', 'denied', 'failed']).optional(),
    key_id: z.string().max(100).optional(),
    since: z.string().max(40).optional(),
  })
  .strict();

export function registerSecurityRoutes(app: FastifyInstance, gw: GatewayContext): void {
  app.get('/v1/audit', admin('audit.read'), async (req) => {
    const q = auditQuery.safeParse(req.query);
    if (!q.success)
      throw new IsoError('INVALID_REQUEST', q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const entries = await gw.auditTrail.query(q.data);
    return okEnvelope(req, { entries, count: entries.length }, 'audit log');
  });

  app.get('/v1/keys', admin('keys.list'), async (req) =>
    okEnvelope(req, { keys: await gw.keyring.list() }, 'API keys'),
  );
}
