// Following the registry for notifications/tools/list_changed: one poll per gateway, shared by
// every MCP session on it, comparing the tools/list answer with the last one sent.
import type { InferenceContext } from '../inference/context.js';
import { listTools } from './tools.js';

class RegistryWatch {
  private readonly subscribers = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private last = '';

  constructor(
    private readonly gw: InferenceContext,
    private readonly intervalMs: number,
  ) {}

  private signature(): string {
    try {
      return JSON.stringify(listTools(this.gw));
    } catch {
      return this.last;
    }
  }

  subscribe(fn: () => void): () => void {
    if (!this.timer) {
      this.last = this.signature();
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
    this.subscribers.add(fn);
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  private tick(): void {
    const now = this.signature();
    if (now === this.last) return;
    this.last = now;
    for (const fn of this.subscribers) fn();
  }
}

const watches = new WeakMap<InferenceContext, RegistryWatch>();

export function watchFor(gw: InferenceContext, intervalMs: number): RegistryWatch {
  let w = watches.get(gw);
  if (!w) {
    w = new RegistryWatch(gw, intervalMs);
    watches.set(gw, w);
  }
  return w;
}
