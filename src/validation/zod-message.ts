// One wording for schema errors on every surface: "field.path: message; …" (the bare message for
// an issue about the whole value).
import type { z } from 'zod';

export function describeZod(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
