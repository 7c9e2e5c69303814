// A job submission's body on its way in: streamed to a file in the state dir as it arrives
// (never over the upload limit), or only hashed (a retry under an Idempotency-Key), and read back
// a piece at a time with a turn of the event loop between two (intake.ts parses it).
import { randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { IsoError } from '../errors.js';

/** Text handed to a parser at once. */
export const READ_CHUNK = 256 * 1024;

export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** An upload on disk, deleted by dispose(). */
export interface Upload {
  path: string;
  bytes: number;
  dispose(): Promise<void>;
}

/** The client went away before its submission was stored: nothing is kept. */
export class SubmissionAborted extends Error {
  constructor() {
    super('the client closed the connection before the job was stored');
    this.name = 'SubmissionAborted';
  }
}

interface BodyHandlers {
  data(chunk: Buffer): void;
  end(): void;
  /** The connection closed (before the end: the client went away). */
  close(): void;
  error(e: unknown): void;
}

/** Follows a request body to its end; returns what stops following it. */
function follow(body: Readable, on: BodyHandlers): () => void {
  body.on('data', on.data);
  body.once('end', on.end);
  body.once('close', on.close);
  body.once('error', on.error);
  return () => {
    body.off('data', on.data);
    body.off('end', on.end);
    body.off('close', on.close);
    body.off('error', on.error);
  };
}

/**
 * Writes a request body to `<dir>/<uuid>.upload` as it arrives, hashing it. Over `maxBytes` it
 * stops writing, deletes the file and throws tooLarge(); the rest of the body is read and
 * dropped so the client can read the answer.
 */
export function receiveUpload(
  body: Readable,
  dir: string,
  maxBytes: number,
  tooLarge: () => IsoError,
  hash?: Hash,
): Promise<Upload> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${randomUUID()}.upload`);
  const dispose = (): Promise<void> => rm(path, { force: true });
  return new Promise<Upload>((resolve, reject) => {
    const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    let bytes = 0;
    let done = false;
    const fail = (e: unknown): void => {
      if (done) return;
      done = true;
      detach();
      body.resume(); // drop what is left of the body
      out.destroy();
      void dispose().finally(() => reject(e));
    };
    const detach = follow(body, {
      data: (chunk) => {
        bytes += chunk.length;
        if (bytes > maxBytes) return fail(tooLarge());
        hash?.update(chunk);
        if (!out.write(chunk)) {
          body.pause();
          out.once('drain', () => body.resume());
        }
      },
      end: () => {
        detach();
        out.end();
      },
      close: () => fail(new SubmissionAborted()),
      error: fail,
    });
    out.once('error', fail);
    out.once('close', () => {
      if (done) return;
      done = true;
      resolve({ path, bytes, dispose });
    });
  });
}

/** Reads a body only to hash it (a retry under an Idempotency-Key already used): nothing is written. */
export function hashBody(body: Readable, maxBytes: number, tooLarge: () => IsoError, hash: Hash): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let bytes = 0;
    const onError = (e: unknown): void => {
      detach();
      body.resume();
      reject(e);
    };
    const detach = follow(body, {
      data: (chunk) => {
        bytes += chunk.length;
        if (bytes > maxBytes) return onError(tooLarge());
        hash.update(chunk);
      },
      end: () => {
        detach();
        resolve();
      },
      close: () => onError(new SubmissionAborted()),
      error: onError,
    });
  });
}

/** An upload's text, a piece at a time, with a turn of the event loop after each. */
export async function* readUpload(upload: Upload): AsyncGenerator<string> {
  const stream = createReadStream(upload.path, { encoding: 'utf8', highWaterMark: READ_CHUNK });
  try {
    for await (const text of stream as AsyncIterable<string>) {
      yield text;
      await yieldToLoop();
    }
  } finally {
    stream.destroy();
  }
}
