// A copy of a shared table kept in memory is reloaded when another gateway announces a change,
// and written through by this one. A reload that overlaps a write of this gateway could hand
// back the rows from before it; the guard drops such a reload (the write keeps its own copy).

export class WriteGuard {
  /** Writes of this gateway in flight, and how many finished. */
  private writing = 0;
  private written = 0;

  /** Runs `read`, and `apply` on its result unless a write of this gateway began or finished meanwhile. */
  async reload<T>(read: () => Promise<T>, apply: (rows: T) => void): Promise<void> {
    if (this.writing > 0) return;
    const before = this.written;
    const rows = await read();
    if (this.writing > 0 || this.written !== before) return;
    apply(rows);
  }

  /** Runs a write (which updates the copy itself before it returns). */
  async write<T>(fn: () => Promise<T>): Promise<T> {
    this.writing++;
    try {
      const out = await fn();
      this.written++;
      return out;
    } finally {
      this.writing--;
    }
  }
}
