// The worker protocol reader is strict: anything else is a protocol violation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter, parseWorkerLine } from '../src/worker/protocol.js';

describe('worker protocol', () => {
  it('accepts well-formed messages', () => {
    assert.deepEqual(parseWorkerLine('{"op":"result","id":"b1","outputs":[{"x":1}]}'), { op: 'result', id: 'b1', outputs: [{ x: 1 }] });
    assert.equal(parseWorkerLine('{"op":"ready","protocol":1}')?.op, 'ready');
    assert.equal(parseWorkerLine('{"op":"pong","id":"p"}')?.op, 'pong');
  });

  it('rejects anything else', () => {
    for (const line of ['not json', '[]', '42', '{"op":"hello"}', '{"op":"result","id":"b"}', '{"op":"result","id":"b","outputs":[1]}', '{"op":"ready","protocol":2}', '{"op":"chunk","id":"b"}', 'NaN']) {
      assert.equal(parseWorkerLine(line), null, line);
    }
  });

  it('splits lines across arbitrary chunk boundaries', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    for (const chunk of ['{"a"', ':1}\n{"b":2}\n\n{"c"', ':3}\n']) s.push(chunk);
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('does not buffer an endless line forever', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 1000);
    s.push('x'.repeat(1500));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.length, 200);
  });
});
