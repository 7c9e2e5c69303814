// Model ids (`name` or `name@version`), version ordering and version policies (which of a
// model's discovered versions load on their own, like Triton's version_policy).
import { z } from 'zod';
import { IsoError } from '../errors.js';

export interface ModelId {
  name: string;
  /** Absent: the model's default version (or its traffic split). */
  version?: string;
}

/** `promoter` or `promoter@2.0.0`, split as they are (`name@` gives an empty version). */
export function splitModelId(id: string): ModelId {
  const at = id.indexOf('@');
  return at === -1 ? { name: id } : { name: id.slice(0, at), version: id.slice(at + 1) };
}

/** `promoter` or `promoter@2.0.0`. Names cannot contain '@', so the split is unambiguous. */
export function parseModelId(id: string): ModelId {
  const parsed = splitModelId(id);
  if (parsed.version === '') throw new IsoError('MODEL_NOT_FOUND', `"${id.slice(0, 80)}" names no version after "@"`);
  return parsed;
}

export function modelId(name: string, version: string): string {
  return `${name}@${version}`;
}

/** Orders versions numerically where they are numbers (1.10.0 after 1.9.0), else by text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+_-]/);
  const pb = b.split(/[.+_-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x.localeCompare(y);
    if (c !== 0) return c < 0 ? -1 : 1;
  }
  return 0;
}

export const versionPolicySchema = z.union([
  z.object({ latest: z.number().int().min(1).max(100) }).strict(),
  z.object({ specific: z.array(z.string().min(1)).min(1) }).strict(),
  z.object({ all: z.literal(true) }).strict(),
]);
export type VersionPolicy = z.infer<typeof versionPolicySchema>;

/** The default: only the newest version loads by itself (older ones load on request). */
export const DEFAULT_VERSION_POLICY: VersionPolicy = { latest: 1 };

/** The versions a policy keeps loaded, newest first. */
export function selectVersions(versions: string[], policy: VersionPolicy): string[] {
  const sorted = [...versions].sort((a, b) => compareVersions(b, a));
  if ('all' in policy) return sorted;
  if ('latest' in policy) return sorted.slice(0, policy.latest);
  return sorted.filter((v) => policy.specific.includes(v));
}
