// A small HTTP client for the CLI talking to a running gateway.
export interface Envelope<T = unknown> {
  success: boolean;
  message: string;
  data?: T;
  error?: { code: string; details: unknown };
  request_id: string;
}

export async function callGateway<T>(
  baseUrl: string,
  path: string,
  body?: unknown,
  timeoutMs = 120_000,
): Promise<Envelope<T>> {
  const res = await fetch(new URL(path, baseUrl), {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return (await res.json()) as Envelope<T>;
}

/** True when a gateway answers its liveness probe at baseUrl. */
export async function gatewayUp(baseUrl: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/health/live', baseUrl), { signal: AbortSignal.timeout(1500) });
    return res.ok;
  } catch {
    return false;
  }
}
