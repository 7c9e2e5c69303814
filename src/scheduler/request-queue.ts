// A bounded priority queue of batch items. Higher priority first, FIFO within a priority.
import type { WorkItem } from '../worker/protocol.js';

export interface QueuedRequest {
  task: string;
  items: WorkItem[];
  priority: number;
  enqueuedAt: number;
  stream: boolean;
  /** Set once the request was answered, failed, cancelled or timed out. */
  done: boolean;
}

export interface Unit<R extends QueuedRequest = QueuedRequest> {
  req: R;
  index: number;
}

export class RequestQueue<R extends QueuedRequest> {
  private units: Unit<R>[] = [];

  constructor(readonly capacity: number) {}

  get length(): number {
    return this.units.length;
  }

  hasRoomFor(n: number): boolean {
    return this.units.length + n <= this.capacity;
  }

  /** Adds every item of a request, keeping them together. */
  push(req: R): void {
    const units = req.items.map((_, index) => ({ req, index }));
    let at = this.units.length;
    while (at > 0 && this.units[at - 1]!.req.priority < req.priority) at--;
    this.units.splice(at, 0, ...units);
  }

  peek(): Unit<R> | undefined {
    return this.units[0];
  }

  /**
   * Takes up to `max` items for the head's task. A streaming request is always a batch of its
   * own: its chunks are addressed to one client.
   */
  takeBatch(max: number): Unit<R>[] {
    const head = this.units[0];
    if (!head) return [];
    const taken: Unit<R>[] = [];
    const rest: Unit<R>[] = [];
    for (const u of this.units) {
      const fits = taken.length < max && (head.req.stream ? u.req === head.req : !u.req.stream && u.req.task === head.req.task);
      (fits ? taken : rest).push(u);
    }
    this.units = rest;
    return taken;
  }

  /** How many items a batch taken now would hold. */
  batchableCount(max: number): number {
    const head = this.units[0];
    if (!head) return 0;
    let n = 0;
    for (const u of this.units) {
      if (head.req.stream ? u.req === head.req : !u.req.stream && u.req.task === head.req.task) n++;
      if (n >= max) break;
    }
    return n;
  }

  remove(req: R): void {
    this.units = this.units.filter((u) => u.req !== req);
  }

  drainAll(): R[] {
    const reqs = [...new Set(this.units.map((u) => u.req))];
    this.units = [];
    return reqs;
  }
}
