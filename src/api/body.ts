// A request body (or query) checked against a zod schema: INVALID_REQUEST naming the first problem.
import type { z } from 'zod';
import { IsoError } from '../errors.js';
import { describeZod } from '../validation/zod-message.js';

export function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new IsoError('INVALID_REQUEST', describeZod(r.error));
  return r.data as z.infer<T>;
}
