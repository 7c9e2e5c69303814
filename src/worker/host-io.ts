// The worker's side of the stdio conversation, shared by the worker hosts (node-host.ts,
// http-adapter.ts): protocol lines out on fd 1, the gateway's lines parsed and pings answered.
import { writeSync } from 'node:fs';
import type { GatewayMessage } from './protocol.js';

/** One protocol line to the gateway, written at once to fd 1 (never through console). */
export function send(msg: object): void {
  writeSync(1, JSON.stringify(msg) + '\n');
}

/**
 * A handler for the gateway's lines: a ping is answered here, an unreadable line reported to
 * `unreadable` and skipped, every other message handed to `handle`.
 */
export function gatewayLines(
  unreadable: (line: string) => void,
  handle: (msg: Exclude<GatewayMessage, { op: 'ping' }>) => void,
): (line: string) => void {
  return (line) => {
    let msg: GatewayMessage;
    try {
      msg = JSON.parse(line) as GatewayMessage;
    } catch {
      unreadable(line);
      return;
    }
    if (msg.op === 'ping') send({ op: 'pong', id: msg.id });
    else handle(msg);
  };
}
