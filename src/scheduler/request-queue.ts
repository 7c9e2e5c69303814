// A bounded queue of batch items, and the choice of what goes into the next worker batch.
//
// Order: higher priority first, FIFO within a priority, with aging: a request gains one priority
// level per `agingMs` in the queue, so a low-priority request is never starved by a stream of
// higher ones. Since every queued request ages at the same rate, the order between two requests
// never changes while they wait: it is a static key, `enqueuedAt - priority * agingMs` (lower
// first), and the queue stays a sorted array.
//
// Batches: the head (the request that has waited longest for its priority) is always in the next
// batch. With a token budget (`maxTokens`, for models whose cost grows with the padded length of a
// batch: transformers), items are grouped by length bucket (powers of two): the head's bucket
// first, then the nearest buckets, while the padded batch (items x longest) fits the budget.
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
  /** The item's length in residues (its sequence's characters): its cost in tokens. */
  tokens: number;
  /** Queue order, lower first: enqueuedAt - priority * agingMs. */
  key: number;
}

export interface BatchLimits {
  maxItems: number;
  /** Padded tokens per batch (items x longest item); Infinity: no budget and no length buckets. */
  maxTokens: number;
}

/** What a batch taken now would hold. */
export interface BatchPlan {
  /** Queue positions of the chosen units, ascending. */
  positions: number[];
  /** No further item could join: max_batch_size reached, or the token budget allows no other item. */
  full: boolean;
}

/** Items a batch may be chosen from, from the head on: bounds the work of one choice on a long queue. */
const SCAN_WINDOW = 4096;

/** Length bucket of an item: powers of two (1, 2, 3-4, 5-8, ...). */
export function lengthBucket(tokens: number): number {
  return tokens <= 1 ? 0 : 32 - Math.clz32(tokens - 1);
}

/** Tokens a batch costs padded to its longest item, and how many of them are padding. */
export function paddedTokens(units: readonly Unit[]): { padded: number; padding: number } {
  let longest = 0;
  let real = 0;
  for (const u of units) {
    real += u.tokens;
    if (u.tokens > longest) longest = u.tokens;
  }
  return { padded: longest * units.length, padding: longest * units.length - real };
}

export class RequestQueue<R extends QueuedRequest> {
  private units: Unit<R>[] = [];

  /** `agingMs`: queue time worth one priority level (0: strict priority). */
  constructor(
    readonly capacity: number,
    readonly agingMs = 1000,
  ) {}

  get length(): number {
    return this.units.length;
  }

  hasRoomFor(n: number): boolean {
    return this.units.length + n <= this.capacity;
  }

  /** Adds every item of a request, keeping them together. */
  push(req: R): void {
    // Strict priority (agingMs 0): priority first (a level outweighs any epoch-ms time, and
    // |key| stays where doubles still count single milliseconds), then arrival.
    const key = this.agingMs > 0 ? req.enqueuedAt - req.priority * this.agingMs : req.enqueuedAt - req.priority * 1e14;
    const units = req.items.map((item, index) => ({ req, index, tokens: itemTokens(item), key }));
    let at = this.units.length;
    while (at > 0 && this.units[at - 1]!.key > key) at--;
    if (at === this.units.length) for (const u of units) this.units.push(u);
    else this.units.splice(at, 0, ...units);
  }

  peek(): Unit<R> | undefined {
    return this.units[0];
  }

  /**
   * Chooses the next batch without taking it: the head, then items it can share a worker call
   * with (same task; a streaming request is always a batch of its own, its chunks are addressed
   * to one client), within the limits.
   */
  plan(limits: BatchLimits): BatchPlan {
    const units = this.units;
    const head = units[0];
    if (!head) return { positions: [], full: false };
    const { maxItems, maxTokens } = limits;
    const end = Math.min(units.length, SCAN_WINDOW);
    const fits = (u: Unit<R>): boolean =>
      head.req.stream ? u.req === head.req : !u.req.stream && u.req.task === head.req.task;
    const positions = [0];
    if (!Number.isFinite(maxTokens)) {
      for (let i = 1; i < end && positions.length < maxItems; i++) if (fits(units[i]!)) positions.push(i);
      return { positions, full: positions.length >= maxItems };
    }
    // Length buckets: candidates grouped by bucket, each group in queue order.
    const headBucket = lengthBucket(head.tokens);
    const byBucket = new Map<number, number[]>();
    for (let i = 1; i < end; i++) {
      const u = units[i]!;
      if (!fits(u)) continue;
      const b = lengthBucket(u.tokens);
      let list = byBucket.get(b);
      if (!list) byBucket.set(b, (list = []));
      list.push(i);
    }
    // The head's bucket, then the nearest ones (the shorter of two equally near first).
    const order = [...byBucket.keys()].sort((a, b) => Math.abs(a - headBucket) - Math.abs(b - headBucket) || a - b);
    let longest = head.tokens;
    for (const b of order) {
      for (const i of byBucket.get(b)!) {
        if (positions.length >= maxItems) break;
        const t = units[i]!.tokens;
        const padded = (positions.length + 1) * Math.max(longest, t);
        if (padded > maxTokens) continue;
        positions.push(i);
        if (t > longest) longest = t;
      }
    }
    // Full when no more items fit, or not even one more of the current longest's length would.
    positions.sort((a, b) => a - b);
    return { positions, full: positions.length >= maxItems || (positions.length + 1) * longest > maxTokens };
  }

  /** Takes the batch plan() chooses. */
  takeBatch(limits: BatchLimits): Unit<R>[] {
    const { positions } = this.plan(limits);
    if (positions.length === 0) return [];
    // The common case, a prefix of the queue, without rebuilding it.
    if (positions[positions.length - 1] === positions.length - 1) return this.units.splice(0, positions.length);
    const taken: Unit<R>[] = [];
    const rest: Unit<R>[] = [];
    let p = 0;
    this.units.forEach((u, i) => {
      if (positions[p] === i) {
        taken.push(u);
        p++;
      } else rest.push(u);
    });
    this.units = rest;
    return taken;
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

/**
 * What one item weighs in a length-bucketed batch: residues of a sequence, characters of a text
 * or a conversation; 1 for inputs of a fixed shape (JSON, tensors, images, audio).
 */
export function itemTokens(item: WorkItem): number {
  if (item.sequence !== undefined) return item.sequence.length;
  const x = item.input;
  if (typeof x === 'string') return x.length;
  const messages = (x as { messages?: { content: string }[] } | null)?.messages;
  if (Array.isArray(messages))
    return messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.length : 0), 0);
  return 1;
}
