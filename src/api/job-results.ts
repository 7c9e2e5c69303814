// A job's results as streams of text: JSONL in input order (following a live job), or CSV once it is done.
import { CsvWriter, type OutputRecord } from '../jobs/formats.js';
import type { JobRunner } from '../jobs/runner.js';
import { TERMINAL } from '../jobs/store.js';

/**
 * Results from index `from` on, in input order. Following a live job, it stops at the first
 * record without a result and waits for it; once the job is over (or with follow off) it
 * skips records that have none (a cancelled or failed job).
 */
export async function* jsonlResults(
  runner: JobRunner,
  id: string,
  from: number,
  follow: boolean,
): AsyncGenerator<string> {
  let next = from;
  for (;;) {
    if (runner.stopped) throw new Error('the gateway is shutting down; reconnect with ?from=' + next);
    const job = await runner.get(id);
    const final = !follow || TERMINAL.has(job.status);
    const rows = await runner.store.results(id, next, 1000);
    let out = '';
    let blocked = false;
    for (const r of rows) {
      if (r.status === 'pending') {
        if (!final) {
          blocked = true;
          break;
        }
      } else out += r.result! + '\n';
      next = r.idx + 1;
    }
    if (out) yield out;
    if (rows.length === 0 || next >= job.total) return;
    if (blocked) await runner.waitForChange(id, 1000);
  }
}

async function* completedRecords(runner: JobRunner, id: string): AsyncGenerator<OutputRecord> {
  let next = 0;
  for (;;) {
    const rows = await runner.store.results(id, next, 1000);
    if (rows.length === 0) return;
    for (const r of rows) if (r.result) yield JSON.parse(r.result) as OutputRecord;
    next = rows[rows.length - 1]!.idx + 1;
  }
}

export async function* csvResults(runner: JobRunner, id: string): AsyncGenerator<string> {
  // The columns: every output field, in first-seen order (one pass to find them, one to write).
  const fields: string[] = [];
  for await (const r of completedRecords(runner, id)) CsvWriter.fieldsOf([r], fields);
  const w = new CsvWriter(fields);
  yield w.header();
  let out = '';
  let n = 0;
  for await (const r of completedRecords(runner, id)) {
    out += w.row(r);
    if (++n % 1000 === 0) {
      yield out;
      out = '';
    }
  }
  if (out) yield out;
}
