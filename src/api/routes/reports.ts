// Performance reports: GET /v1/reports/{model}?window=1h&format=json|html.
import type { FastifyInstance } from 'fastify';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { buildReport, renderReportHtml } from '../../telemetry/report.js';
import { parseWindow } from '../../telemetry/series.js';
import { okEnvelope } from '../envelope.js';
import { PREDICT } from '../../security/route-scope.js';

/** The HTML report carries no script and loads nothing: the policy says so to the browser too. */
export const REPORT_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

export function registerReportRoutes(app: FastifyInstance, gw: GatewayContext): void {
  app.get<{ Params: { model: string }; Querystring: { window?: string; format?: string } }>(
    '/v1/reports/:model',
    PREDICT,
    async (req, reply) => {
      const format = req.query.format ?? 'json';
      if (format !== 'json' && format !== 'html') throw new IsoError('INVALID_REQUEST', 'format must be json or html');
      const report = buildReport(
        { store: gw.store, registry: gw.registry },
        req.params.model,
        parseWindow(req.query.window, '1h'),
      );
      if (format === 'html') {
        return reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', REPORT_CSP)
          .header('cache-control', 'no-store')
          .send(renderReportHtml(report));
      }
      return okEnvelope(req, report, `performance report of ${report.model} over ${report.window.label}`);
    },
  );
}
