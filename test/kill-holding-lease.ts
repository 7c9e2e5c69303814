// The three "a gateway is SIGKILLed mid-job" tests kill it at a moment it holds a lease. Killed at
// a random moment, a gateway whose in-flight chunks had just committed left nothing to take over,
// and the test's "a chunk was taken over" failed (seen once in CI). Paused with SIGSTOP, its
// leases can be read without racing its commits; it is killed only while it holds one.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { SqlRunner } from '../src/store/sql.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Open chunks of `jobId` leased by an owner matching `ownerLike` (SQL LIKE), by `lo`. */
async function leasedChunks(sql: SqlRunner, jobId: string, ownerLike: string): Promise<number[]> {
  const rows = await sql.query<{ lo: number }>(
    `SELECT lo FROM job_chunks WHERE job_id = ? AND status = 'open' AND lease_owner LIKE ? ORDER BY lo`,
    [jobId, ownerLike],
  );
  return rows.map((r) => Number(r.lo));
}

/**
 * SIGKILLs `child` while it holds at least one lease on an open chunk of `jobId`; returns the
 * chunks (their `lo`) it held when it died. Throws after `tries` looks without a lease.
 */
export async function killHoldingLease(
  child: ChildProcess,
  sql: SqlRunner,
  jobId: string,
  ownerLike: string,
  tries = 200,
): Promise<number[]> {
  for (let i = 0; i < tries; i++) {
    child.kill('SIGSTOP');
    // A commit already sent lands meanwhile; one not yet sent is rolled back by the kill.
    await sleep(150);
    if ((await leasedChunks(sql, jobId, ownerLike)).length > 0) {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      const held = await leasedChunks(sql, jobId, ownerLike);
      if (held.length > 0) return held;
      throw new Error('the leases seen while it was paused were gone once it died');
    }
    child.kill('SIGCONT');
    await sleep(20 + (i % 7) * 5);
  }
  throw new Error(`the process held no lease on job ${jobId} in ${tries} looks`);
}

/** Each chunk the dead process held was run again and closed. */
export async function assertTakenOver(sql: SqlRunner, jobId: string, held: readonly number[]): Promise<void> {
  const rows = await sql.query<{ lo: number; status: string; attempts: number }>(
    `SELECT lo, status, attempts FROM job_chunks WHERE job_id = ? AND lo IN (${held.map(() => '?').join(', ')}) ORDER BY lo`,
    [jobId, ...held],
  );
  assert.deepEqual(
    rows.map((r) => [Number(r.lo), r.status, Number(r.attempts) > 1]),
    held.map((lo) => [lo, 'done', true]),
    'every chunk the killed gateway held was taken over once its lease expired',
  );
}
