// Requests whose target is sent exactly as written: fetch (and URL) would resolve dot segments,
// drop fragments and re-encode, which is what the route-authorization tests must not let happen.
import http from 'node:http';

export interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** Sends the target exactly as written. */
export function rawRequest(
  base: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Raw> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const h: Record<string, string | number> = { ...headers };
    if (body !== undefined) {
      h['content-type'] ??= 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host: u.hostname, port: u.port, method, path: target, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer in 30 s: ${method} ${target}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The route's pattern with its parameters filled in. */
export function concretePath(url: string, values: Record<string, string>): string {
  return url.replace(/:([A-Za-z_]+)/g, (_m, name: string) => values[name] ?? 'x');
}
