// Reading a text/event-stream body in tests: the events as the server framed them.
import assert from 'node:assert/strict';

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/**
 * Reads an event stream to its end, or until `enough` says so. Stopping early leaves the rest
 * unread (the connection stays open) unless `cancel` is set: then the client leaves mid-stream.
 */
export async function readEvents(
  res: Response,
  enough?: (events: SseEvent[]) => boolean,
  opts: { cancel?: boolean } = {},
): Promise<SseEvent[]> {
  assert.ok(res.body, 'response has a body');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      events.push({ event, data: data.join('\n') });
    }
    if (enough?.(events)) {
      if (opts.cancel) await reader.cancel();
      return events;
    }
  }
  assert.equal(buffer, '', 'the stream ends on an event boundary');
  return events;
}
