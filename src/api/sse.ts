// Server-Sent Events for streamed predictions (the native API and the OpenAI-compatible one).
//
// The stream opens lazily, on the first event: until then the route can still answer with a
// plain JSON error and a real status code (validation, queue full, model not loaded, a failure
// before the first chunk). Once open, the status is 200 and errors travel in-band.
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Whether a predict request asked for an event stream: `"stream": true` in the body, or an
 * `Accept` header naming text/event-stream (Cog-style). An explicit `"stream": false` wins.
 */
export function wantsEventStream(req: FastifyRequest, bodyStream: boolean | undefined): boolean {
  if (bodyStream !== undefined) return bodyStream;
  const accept = req.headers.accept;
  if (!accept) return false;
  return accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    if (type !== 'text/event-stream') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** One text/event-stream response, written to the raw socket after hijacking the reply. */
export class EventStream {
  private started = false;
  private closed = false;

  constructor(
    private readonly req: FastifyRequest,
    private readonly reply: FastifyReply,
  ) {}

  /** True once the headers went out: from then on errors must be sent as events. */
  get open(): boolean {
    return this.started;
  }

  /** False once the stream ended or was discarded, or the client went away (writes are then dropped). */
  get writable(): boolean {
    const raw = this.reply.raw;
    return !this.closed && !raw.destroyed && !raw.writableEnded;
  }

  /**
   * The route answers without a stream (a JSON error before the first event): chunks a worker
   * still sends before it sees the cancel must not open one.
   */
  discard(): void {
    if (!this.started) this.closed = true;
  }

  private start(): void {
    if (this.started || this.closed) return;
    if (this.reply.sent || this.reply.raw.headersSent) {
      this.closed = true; // answered some other way already
      return;
    }
    this.started = true;
    // Fastify's onSend hooks do not run for a hijacked reply: carry over what hooks already set
    // (rate-limit headers) and the request id the server's hook would have added.
    const raw = this.reply.raw;
    for (const [key, value] of Object.entries(this.reply.getHeaders()))
      if (value !== undefined) raw.setHeader(key, value);
    this.reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
      'x-request-id': this.req.id,
    });
  }

  /** Writes one event; `data` is sent as is, one `data:` line per line of it. */
  write(data: string, event?: string): void {
    this.start();
    if (!this.writable) return;
    const lines = data
      .split('\n')
      .map((l) => `data: ${l}\n`)
      .join('');
    this.reply.raw.write(`${event ? `event: ${event}\n` : ''}${lines}\n`);
  }

  /** Writes one event whose data is `payload` as JSON. */
  send(event: string | undefined, payload: unknown): void {
    this.write(JSON.stringify(payload), event);
  }

  /** Ends the response (opening it first if nothing was sent); returns the reply for the handler. */
  end(): FastifyReply {
    this.start();
    if (this.writable) this.reply.raw.end();
    this.closed = true;
    return this.reply;
  }
}
