// Message shapes of the worker protocol (docs/worker-protocol.md), shared by the gateway
// side (drivers) and the Node worker host.
export const PROTOCOL_VERSION = 1;

/**
 * One input of a batch. A sequence task's item has `sequence` (validated, upper-cased); every
 * other input type's has `input` (text, a JSON value, named tensors, an image or audio file as
 * base64 with its format, a chat conversation: docs/worker-protocol.md).
 */
export interface WorkItem {
  sequence?: string;
  input?: unknown;
  options: Record<string, unknown>;
}

export interface ItemError {
  error: { code: string; message: string };
}

/** One entry per batch item: the model's output object, or that item's error. */
export type ItemOutput = Record<string, unknown>;

export type GatewayMessage =
  | { op: 'predict'; id: string; task: string; input_type?: string; items: WorkItem[]; stream: boolean }
  | { op: 'cancel'; id: string }
  | { op: 'ping'; id: string }
  | { op: 'shutdown' };

export type WorkerMessage =
  | {
      op: 'ready';
      protocol: number;
      pid?: number;
      model?: Record<string, unknown>;
      capabilities?: { stream?: boolean };
    }
  | { op: 'fatal'; code: string; message: string }
  | { op: 'result'; id: string; outputs: ItemOutput[] }
  | { op: 'error'; id: string; code: string; message: string }
  | { op: 'chunk'; id: string; index: number; data: unknown }
  | { op: 'end'; id: string; outputs: ItemOutput[] }
  | { op: 'pong'; id: string };

const WORKER_OPS = new Set(['ready', 'fatal', 'result', 'error', 'chunk', 'end', 'pong']);

/**
 * Strictly parse one stdout line. Returns null for anything that is not a well-formed
 * worker message: the caller treats that as a protocol violation.
 */
export function parseWorkerLine(line: string): WorkerMessage | null {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return null;
  const m = msg as Record<string, unknown>;
  if (typeof m.op !== 'string' || !WORKER_OPS.has(m.op)) return null;
  switch (m.op) {
    case 'result':
    case 'end':
      if (typeof m.id !== 'string' || !Array.isArray(m.outputs)) return null;
      if (!m.outputs.every((o) => typeof o === 'object' && o !== null && !Array.isArray(o))) return null;
      break;
    case 'error':
      if (typeof m.id !== 'string' || typeof m.code !== 'string') return null;
      if (typeof m.message !== 'string') m.message = String(m.message ?? '');
      break;
    case 'chunk':
      if (typeof m.id !== 'string' || typeof m.index !== 'number') return null;
      break;
    case 'pong':
      if (typeof m.id !== 'string') return null;
      break;
    case 'fatal':
      if (typeof m.code !== 'string') m.code = 'MODEL_NOT_LOADED';
      if (typeof m.message !== 'string') m.message = String(m.message ?? '');
      break;
    case 'ready':
      if (m.protocol !== PROTOCOL_VERSION) return null;
      break;
  }
  return m as unknown as WorkerMessage;
}

export function isItemError(o: ItemOutput): o is ItemOutput & ItemError {
  const e = (o as Partial<ItemError>).error;
  return typeof e === 'object' && e !== null && typeof e.code === 'string';
}

/** Splits a byte stream into lines without assuming chunk boundaries fall on newlines. */
export class LineSplitter {
  private buffer = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLineBytes = 64 * 1024 * 1024,
  ) {}

  push(chunk: string): void {
    // Only the new chunk is searched for line ends: a long line arriving in many chunks is not
    // rescanned from its start each time (that was quadratic in the line's length).
    let start = 0;
    let nl = chunk.indexOf('\n');
    if (nl !== -1 && this.buffer !== '') {
      const line = this.buffer + chunk.slice(0, nl);
      this.buffer = '';
      this.emit(line);
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    while (nl !== -1) {
      this.emit(chunk.slice(start, nl));
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    this.buffer += start === 0 ? chunk : chunk.slice(start);
    // A worker that never ends its line would otherwise grow the gateway without bound.
    if (this.buffer.length > this.maxLineBytes) {
      const overflow = this.buffer;
      this.buffer = '';
      this.onLine(overflow.slice(0, 200));
    }
  }

  private emit(line: string): void {
    if (line.trim() !== '') this.onLine(line);
  }
}
