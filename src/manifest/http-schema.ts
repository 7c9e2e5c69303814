// The http section of model.yaml (runtime http: a model that is an HTTP server) and the
// combinations of runtime, entry, image and isolation it takes.
import { z } from 'zod';

/**
 * A docker image reference as the engine takes it: [registry/]name[:tag][@digest], lowercase
 * name. Checked loosely here; the engine has the last word.
 */
const imageRef = z
  .string()
  .max(300)
  .regex(/^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64})?$/, 'a docker image reference such as my-org/my-model:1.0');

/** A URL path of the model's server: starts with "/", printable ASCII, no spaces (it goes into a request line). */
const urlPath = z
  .string()
  .max(2048)
  .regex(/^\/[\x21-\x7e]*$/, 'a URL path such as /predict (printable ASCII, no spaces)');
/** Placeholders of an http request template (whole string values only). */
export const HTTP_INPUT = '$input';
export const HTTP_INPUTS = '$inputs';
export const HTTP_PLACEHOLDERS = [HTTP_INPUT, HTTP_INPUTS, '$options', '$task'] as const;

/** Every placeholder a request template uses (a string value that is exactly one of them). */
export function templatePlaceholders(t: unknown, found = new Set<string>()): Set<string> {
  if (typeof t === 'string' && (HTTP_PLACEHOLDERS as readonly string[]).includes(t)) found.add(t);
  else if (Array.isArray(t)) for (const v of t) templatePlaceholders(v, found);
  else if (typeof t === 'object' && t !== null) for (const v of Object.values(t)) templatePlaceholders(v, found);
  return found;
}

/**
 * runtime http: a model that is an HTTP server (drivers/http.ts, worker/http-adapter.ts). Either
 * a command (`entry`) or an image (`image`, isolation docker); an adapter beside it, inside the
 * same isolation, speaks the worker protocol to the gateway and HTTP to the server on loopback.
 */
export const httpSchema = z
  .object({
    /** The image the server runs from (isolation docker); without it, `entry` is its command line. */
    image: imageRef.optional(),
    /**
     * The port the server listens on, on loopback. Required with `image`. Absent for a command:
     * a free port is chosen per replica and given as {port} in `entry` and as $PORT.
     */
    port: z.number().int().min(1).max(65535).optional(),
    health_path: urlPath.default('/health'),
    predict_path: urlPath.default('/predict'),
    method: z.enum(['POST', 'PUT']).default('POST'),
    /**
     * The request body: a JSON template whose string values "$input" (the item's sequence or
     * input), "$options", "$task" and, with batch list, "$inputs" are replaced. Default: the input itself.
     */
    request: z.unknown().default(HTTP_INPUT),
    /** Dot path of the output in the server's JSON answer ("data", "data.predictions", "results.0"); "" = all of it. */
    response: z
      .string()
      .max(512)
      .regex(/^([A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*)?$/, 'a dot path such as data or data.predictions')
      .default(''),
    /** item: one request per batch item; list: one request with "$inputs", answered with a list of outputs. */
    batch: z.enum(['item', 'list']).default('item'),
    /** Bytes of one answer (list: of the whole answer); more is refused, with RESPONSE_TOO_LARGE. */
    max_response_bytes: z
      .number()
      .int()
      .min(1024)
      .max(32 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    /** From the start to a healthy answer (2xx from health_path); under the gateway's own 120 s for any worker. */
    startup_timeout_ms: z.number().int().min(100).max(115_000).default(60_000),
    /** How often an idle replica's server is health-checked (0: never; the server's exit is still seen). */
    health_interval_ms: z.number().int().min(0).max(3_600_000).default(5000),
    /** How long one health check may take. */
    health_timeout_ms: z.number().int().min(50).max(600_000).default(2000),
    /** Failed health checks in a row after which the replica is replaced. */
    unhealthy_after: z.number().int().min(1).max(100).default(3),
  })
  .strict();

export type HttpManifestPart = {
  runtime: string;
  entry?: string | string[];
  isolation: string;
  http?: z.infer<typeof httpSchema>;
};

/** The combinations runtime http takes, each refused with what to do instead. */
export function checkHttp(m: HttpManifestPart, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string): void =>
    ctx.addIssue({ code: z.ZodIssueCode.custom, path, message });
  if (m.runtime !== 'http') {
    if (m.http) issue(['http'], 'only runtime "http" takes an http section');
    return;
  }
  const h = m.http;
  if (!h)
    return issue(['http'], 'runtime "http" needs an http section (health_path, predict_path, … and image or entry)');
  if (h.image !== undefined && m.entry !== undefined)
    issue(
      ['entry'],
      "give either http.image (the server is that image) or entry (the server's command line), not both",
    );
  if (h.image === undefined && m.entry === undefined)
    issue(['entry'], 'runtime "http" needs entry (the server\'s command line) or http.image');
  if (h.image !== undefined) {
    if (m.isolation !== 'docker') issue(['isolation'], 'http.image runs as a container: set isolation: docker');
    if (h.port === undefined)
      issue(['http', 'port'], "required with http.image: the port the image's server listens on");
  } else if (m.isolation === 'docker') {
    issue(
      ['http', 'image'],
      'isolation docker runs an http model from an image: set http.image, or use isolation process or sandbox for a command',
    );
  }
  const used = templatePlaceholders(h.request);
  if (h.batch === 'list' && !used.has(HTTP_INPUTS))
    issue(['http', 'request'], 'batch: list needs "$inputs" (the list of inputs) in the request template');
  else if (h.batch === 'list' && used.has(HTTP_INPUT))
    issue(['http', 'request'], '"$input" is one item\'s input: with batch: list, use "$inputs"');
  if (h.batch === 'item' && used.has(HTTP_INPUTS))
    issue(['http', 'request'], '"$inputs" is for batch: list; one item\'s input is "$input"');
}
