// The batch's progress: a redrawn bar on a terminal, a plain line every few seconds elsewhere.
import type { OutputRecord } from '../jobs/formats.js';

/** Progress on a terminal: one redrawn bar; elsewhere: a plain line every few seconds. */
export class Progress {
  done = 0;
  failed = 0;
  private t0 = Date.now();
  private lastDraw = Date.now();
  private lastPct = 0;
  private lastDone = -1;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly enabled: boolean,
  ) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  /** Rates and ETA count from here: the workers are up (or the job is accepted). */
  begin(): void {
    this.t0 = Date.now();
    this.lastDraw = this.t0;
  }

  add(r: OutputRecord): void {
    this.done++;
    if (r.status === 'error') this.failed++;
    this.draw(false);
  }

  private stats(): { rate: number; eta: string; pct: number } {
    const s = (Date.now() - this.t0) / 1000;
    const rate = s > 0 ? this.done / s : 0;
    const left = this.total - this.done;
    const eta = rate > 0 ? formatDuration(left / rate) : '?';
    return { rate, eta, pct: this.total ? (100 * this.done) / this.total : 100 };
  }

  draw(force: boolean): void {
    if (!this.enabled || (force && this.done === this.lastDone)) return;
    const now = Date.now();
    const { rate, eta, pct } = this.stats();
    if (this.tty) {
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.lastDone = this.done;
      const width = 30;
      const filled = Math.round((width * pct) / 100);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      this.out.write(
        `\r${bar} ${pct.toFixed(1).padStart(5)}% ${this.done}/${this.total} | ok ${this.done - this.failed} failed ${this.failed} | ${rate.toFixed(1)}/s | ETA ${eta}  `,
      );
    } else {
      const step = Math.floor(pct / 10);
      if (!force && now - this.lastDraw < 5000 && step === this.lastPct) return;
      this.lastDraw = now;
      this.lastPct = step;
      this.lastDone = this.done;
      this.out.write(
        `progress: ${this.done}/${this.total} (${pct.toFixed(1)}%) done=${this.done - this.failed} failed=${this.failed} rate=${rate.toFixed(1)}/s eta=${eta}\n`,
      );
    }
  }

  end(): void {
    if (!this.enabled) return;
    this.draw(true);
    if (this.tty && this.lastDone >= 0) this.out.write('\n');
  }
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
