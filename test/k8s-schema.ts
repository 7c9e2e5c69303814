// Validates Kubernetes objects without a cluster, against two packages generated from the official
// Kubernetes OpenAPI spec (nothing is downloaded at test time):
//   - kubernetes-models 4.5.1 (Kubernetes v1.33.0): precompiled JSON-schema validators per kind:
//     types, required fields, enums, int32/int64 formats;
//   - @kubernetes/client-node 1.4.0 (OpenAPI spec v1.34.0): the attribute map of every model. A
//     field it does not declare is an error, as with `kubectl --validate=strict` or the
//     "-strict" JSON schemas (additionalProperties: false), which kubernetes-models does not check.
// Plus a few rules the API server enforces beyond the schema (names, label values, quantities).
import * as k8s from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';

export const SCHEMA_SOURCES =
  'kubernetes-models 4.5.1 (Kubernetes v1.33.0) + @kubernetes/client-node 1.4.0 (OpenAPI v1.34.0)';

type ModelClass = new (data: any) => { validate(): void };
const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap as unknown as ModelClass,
  'v1/Namespace': Namespace as unknown as ModelClass,
  'v1/Service': Service as unknown as ModelClass,
  'apps/v1/Deployment': Deployment as unknown as ModelClass,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler as unknown as ModelClass,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as unknown as ModelClass,
};

interface Attr {
  baseName: string;
  type: string;
  format: string;
}

function attributes(type: string): Attr[] | undefined {
  const cls = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attr[] } | undefined>)[type];
  return cls?.getAttributeTypeMap?.();
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Walks a value against client-node's generated type: unknown fields and wrong primitive types. */
function strict(value: unknown, type: string, format: string, path: string, errors: string[]): void {
  if (value === undefined || value === null) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (!Array.isArray(value)) return void errors.push(`${path}: must be an array (${type})`);
    value.forEach((v, i) => strict(v, arr[1]!, '', `${path}/${i}`, errors));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (!isObject(value)) return void errors.push(`${path}: must be a map (${type})`);
    for (const [k, v] of Object.entries(value)) strict(v, map[1]!, '', `${path}/${k}`, errors);
    return;
  }
  switch (type) {
    case 'any':
    case 'object':
      return;
    case 'string':
    case 'Date':
      if (typeof value !== 'string') errors.push(`${path}: must be a string`);
      return;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${path}: must be a boolean`);
      return;
    case 'number':
      if (typeof value !== 'number' || ((format === 'int32' || format === 'int64') && !Number.isInteger(value)))
        errors.push(`${path}: must be ${format || 'a number'}`);
      return;
    case 'IntOrString':
      if (typeof value !== 'string' && !Number.isInteger(value)) errors.push(`${path}: must be an integer or a string`);
      return;
  }
  const attrs = attributes(type);
  if (!attrs) return void errors.push(`${path}: no generated type ${type}`);
  if (!isObject(value)) return void errors.push(`${path}: must be an object (${type})`);
  for (const [k, v] of Object.entries(value)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) errors.push(`${path}/${k}: unknown field (not in ${type})`);
    else strict(v, a.type, a.format, `${path}/${k}`, errors);
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** Rules the API server applies that the OpenAPI schema does not express. */
function apiServerRules(obj: Record<string, any>, errors: string[]): void {
  const name = obj.metadata?.name as string | undefined;
  const nameRule = obj.kind === 'Service' || obj.kind === 'Namespace' ? DNS_1035 : DNS_SUBDOMAIN;
  if (!name || !nameRule.test(name) || name.length > (obj.kind === 'Service' || obj.kind === 'Namespace' ? 63 : 253))
    errors.push(`/metadata/name: "${name}" is not a valid ${obj.kind} name`);
  const labelSets: [string, Record<string, string> | undefined][] = [
    ['/metadata/labels', obj.metadata?.labels],
    ['/spec/selector/matchLabels', obj.kind === 'Deployment' ? obj.spec?.selector?.matchLabels : undefined],
    ['/spec/selector', obj.kind === 'Service' ? obj.spec?.selector : undefined],
    ['/spec/template/metadata/labels', obj.spec?.template?.metadata?.labels],
  ];
  for (const [path, set] of labelSets) {
    for (const [k, v] of Object.entries(set ?? {})) {
      const [prefix, key] = k.includes('/') ? k.split('/') : [undefined, k];
      if (
        (prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) ||
        !key ||
        key.length > 63 ||
        !/^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(key)
      )
        errors.push(`${path}: bad label key "${k}"`);
      if (v.length > 63 || !LABEL_VALUE.test(v)) errors.push(`${path}/${k}: bad label value "${v}"`);
    }
  }
  if (obj.kind === 'Deployment') {
    const sel = obj.spec?.selector?.matchLabels ?? {};
    const tpl = obj.spec?.template?.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(sel))
      if (tpl[k] !== v) errors.push(`/spec/selector: does not match the template labels (${k})`);
    const pod = obj.spec?.template?.spec ?? {};
    const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])] as Record<string, any>[];
    const volumes = new Set((pod.volumes ?? []).map((v: { name: string }) => v.name));
    for (const c of containers) {
      if (!DNS_LABEL.test(c.name)) errors.push(`container "${c.name}": not a DNS label`);
      for (const [kind, set] of Object.entries(c.resources ?? {}))
        for (const [r, q] of Object.entries(set as Record<string, string>))
          if (!QUANTITY.test(String(q))) errors.push(`container "${c.name}" ${kind}.${r}: "${q}" is not a quantity`);
      for (const m of c.volumeMounts ?? [])
        if (!volumes.has(m.name)) errors.push(`container "${c.name}": mounts unknown volume "${m.name}"`);
      for (const p of c.ports ?? [])
        if (p.name && (p.name.length > 15 || !DNS_LABEL.test(p.name) || !/[a-z]/.test(p.name)))
          errors.push(`container "${c.name}": bad port name "${p.name}"`);
    }
  }
}

/** Every problem with one object; empty when it is valid. */
export function validateObject(obj: unknown): string[] {
  if (!isObject(obj)) return ['not an object'];
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const Model = MODELS[key];
  if (!Model) return [`no schema for ${key}`];
  const errors: string[] = [];
  try {
    new Model(obj).validate();
  } catch (e) {
    const list = (e as { errors?: { instancePath: string; message?: string; params?: unknown }[] }).errors;
    if (list)
      errors.push(
        ...list.map((x) => `${x.instancePath || '/'}: ${x.message ?? 'invalid'} ${JSON.stringify(x.params ?? {})}`),
      );
    else errors.push((e as Error).message);
  }
  const group = String(obj.apiVersion).split('/');
  const version = group[group.length - 1]!;
  strict(obj, `${version.charAt(0).toUpperCase()}${version.slice(1)}${String(obj.kind)}`, '', '', errors);
  apiServerRules(obj, errors);
  return errors;
}
