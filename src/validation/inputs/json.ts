// JSON inputs: any JSON value, checked against the JSON Schema the task declares (ajv; draft-07
// by default, 2020-12 when the schema says so). Schemas are compiled once, at package load.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { IsoError } from '../../errors.js';

const DRAFT_2020 = 'https://json-schema.org/draft/2020-12/schema';
// allErrors off: one error is enough to answer, and it bounds the work an input can cause.
const draft07 = new Ajv({ allErrors: false, strict: false, validateFormats: false });
const draft2020 = new Ajv2020({ allErrors: false, strict: false, validateFormats: false });
const compiled = new WeakMap<object, ValidateFunction>();

/** Compiles a task's schema (throws with ajv's reason when it is not a valid schema). */
export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    const ajv = schema.$schema === DRAFT_2020 ? draft2020 : draft07;
    v = ajv.compile(schema);
    compiled.set(schema, v);
  }
  return v;
}

function describe(e: ErrorObject): string {
  const at = e.instancePath ? e.instancePath : '(the input)';
  if (e.keyword === 'required')
    return `${at} is missing the required property "${(e.params as { missingProperty: string }).missingProperty}"`;
  if (e.keyword === 'additionalProperties')
    return `${at} has the property "${(e.params as { additionalProperty: string }).additionalProperty}", which the schema does not allow`;
  if (e.keyword === 'enum')
    return `${at} must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  return `${at} ${e.message ?? 'does not match the schema'}`;
}

export interface JsonRule {
  schema: Record<string, unknown>;
  maxBytes: number;
}

export function validateJson(raw: unknown, rule: JsonRule, field: string): unknown {
  if (raw === undefined) throw new IsoError('INVALID_INPUT', `${field} is required`);
  const size = Buffer.byteLength(JSON.stringify(raw));
  if (size > rule.maxBytes)
    throw new IsoError('PAYLOAD_TOO_LARGE', `${field} is ${size} bytes of JSON; the limit is ${rule.maxBytes}`, {
      bytes: size,
      max_bytes: rule.maxBytes,
    });
  const validate = compileSchema(rule.schema);
  if (!validate(raw)) {
    const e = validate.errors?.[0];
    throw new IsoError(
      'INVALID_INPUT',
      `${field} does not match the task's JSON Schema: ${e ? describe(e) : 'invalid'}`,
      {
        path: e?.instancePath ?? '',
        keyword: e?.keyword,
        schema_path: e?.schemaPath,
      },
    );
  }
  return raw;
}
