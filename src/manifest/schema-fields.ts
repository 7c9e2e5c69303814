// The bounded building blocks of model.yaml fields (schema.ts, task-schema.ts, http-schema.ts):
// names, prose, paths and sequence types.
import { z } from 'zod';

export const SEQUENCE_TYPES = ['DNA', 'RNA', 'protein'] as const;
export type SequenceType = (typeof SEQUENCE_TYPES)[number];

/** Model and task names end up in URLs and file paths: keep them to a safe alphabet. */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const TASK_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

// Every size a package sets is bounded (the file's own size is, in load.ts): manifests are
// copied into /model/info, MCP tool lists, the OIP metadata and the state database.
/** Descriptions and other prose. */
export const TEXT_MAX = 4096;
/** Paths and command-line words. */
export const PATH_MAX = 4096;
export const MAX_TASKS = 64;
export const MAX_TASK_OPTIONS = 64;
export const MAX_ENV_VARS = 256;
export const text = z.string().max(TEXT_MAX);
export const path = z.string().max(PATH_MAX);

export const sequenceType = z.preprocess(
  (v) => (typeof v === 'string' ? (SEQUENCE_TYPES.find((t) => t.toLowerCase() === v.toLowerCase()) ?? v) : v),
  z.enum(SEQUENCE_TYPES),
);
