// The worker protocol reader is strict: anything else is a protocol violation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter, parseWorkerLine } from '../src/worker/protocol.js';

describe('worker protocol', () => {
  it('accepts well-formed messages', () => {
    assert.deepEqual(parseWorkerLine('{"op":"result","id":"b1","outputs":[{"x":1}]}'), {
      op: 'result',
      id: 'b1',
      outputs: [{ x: 1 }],
    });
    assert.equal(parseWorkerLine('{"op":"ready","protocol":1}')?.op, 'ready');
    assert.equal(parseWorkerLine('{"op":"pong","id":"p"}')?.op, 'pong');
  });

  it('rejects anything else', () => {
    for (const line of [
      'not json',
      '[]',
      '42',
      '{"op":"hello"}',
      '{"op":"result","id":"b"}',
      '{"op":"result","id":"b","outputs":[1]}',
      '{"op":"ready","protocol":2}',
      '{"op":"chunk","id":"b"}',
      'NaN',
    ]) {
      assert.equal(parseWorkerLine(line), null, line);
    }
  });

  it('splits lines across arbitrary chunk boundaries', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    for (const chunk of ['{"a"', ':1}\n{"b":2}\n\n{"c"', ':3}\n']) s.push(chunk);
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('gives the same lines for any chunking, a 4 MB line in 1-byte-to-64-KB pieces included', () => {
    const big = JSON.stringify({ op: 'result', id: 'b1', outputs: [{ v: 'x'.repeat(4 * 1024 * 1024) }] });
    const text = `{"a":1}\n\n${big}\n{"b":2}\r\n{"c":3}\n{"partial"`;
    const expected = text
      .split('\n')
      .slice(0, -1)
      .filter((l) => l.trim() !== '');
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (const maxPiece of [1, 3, 17, 4096, 65536]) {
      const lines: string[] = [];
      const s = new LineSplitter((l) => lines.push(l));
      for (let i = 0; i < text.length;) {
        // Small pieces only around the short lines: 4 MB in 1-byte pushes would take minutes.
        const n = i > 20 && i < big.length ? 65536 : 1 + rand(maxPiece);
        s.push(text.slice(i, i + n));
        i += n;
      }
      assert.deepEqual(lines, expected, `pieces up to ${maxPiece}`);
    }
  });

  it('does not buffer an endless line forever', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 1000);
    s.push('x'.repeat(1500));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.length, 200);
  });
});
