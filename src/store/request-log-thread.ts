// The request log's writer thread (see request-log-writer.ts): its own SQLite connection to the
// state database, one transaction per batch the gateway hands over. Whatever happens to a batch,
// its rows are counted as done, so a gateway waiting in flush() is never left hanging.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { LOG_INSERT_COLUMNS, type LogBatch } from './request-log-writer.js';

const { file, done } = workerData as { file: string; done: Int32Array };
/** Rows per INSERT statement: one statement call per row was most of a batch's cost. */
const ROWS_PER_INSERT = 50;
const ROW = `(${LOG_INSERT_COLUMNS.map(() => '?').join(', ')})`;

const db = new Database(file);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
const insert = (rows: number): Database.Statement =>
  db.prepare(`INSERT INTO request_log (${LOG_INSERT_COLUMNS.join(', ')}) VALUES ${Array(rows).fill(ROW).join(', ')}`);
const insertOne = insert(1);
const insertMany = insert(ROWS_PER_INSERT);

/** A row as the gateway sends it ([request_id, at in ms, …]) → the table's values (at as ISO text; idempotent). */
const values = (r: unknown[]): unknown[] => {
  if (typeof r[1] === 'number') r[1] = new Date(r[1]).toISOString();
  return r;
};

const write = db.transaction((rows: unknown[][]) => {
  let i = 0;
  for (; i + ROWS_PER_INSERT <= rows.length; i += ROWS_PER_INSERT)
    insertMany.run(rows.slice(i, i + ROWS_PER_INSERT).flatMap(values));
  for (; i < rows.length; i++) insertOne.run(values(rows[i]!));
});

/** Row by row, after the batch's transaction failed: only the rows SQLite refuses are lost. */
function writeEach(rows: unknown[][]): { lost: number; reason: string; code?: string } {
  let lost = 0;
  let reason = '';
  let code: string | undefined;
  for (const r of rows) {
    try {
      insertOne.run(values(r));
    } catch (e) {
      lost++;
      reason ||= (e as Error).message;
      code ??= (e as { code?: string }).code;
    }
  }
  return { lost, reason, code };
}

parentPort!.on('message', (batch: LogBatch) => {
  try {
    const rows = JSON.parse(batch.rows) as unknown[][];
    try {
      write(rows);
    } catch {
      const { lost, reason, code } = writeEach(rows);
      if (lost)
        parentPort!.postMessage({ error: `request log: ${lost} of ${batch.count} rows not written: ${reason}`, code });
    }
  } catch (e) {
    parentPort!.postMessage({
      error: `request log: ${batch.count} rows not written: ${(e as Error).message}`,
      code: (e as { code?: string }).code,
    });
  } finally {
    Atomics.add(done, 0, batch.count);
    Atomics.notify(done, 0);
  }
});
