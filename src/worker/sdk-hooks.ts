// ESM resolve hook (runs on Node's loader thread): `isomodel/<module>` imported by model code
// resolves to this runtime's own SDK modules, wherever the model package lives on disk. The
// host provides the SDK to the model, as Triton's Python stub provides its utilities.
const SDK_MODULES: Record<string, string> = {
  'isomodel/worker': './node-model.js',
  'isomodel/encoding': './encoding.js',
};

interface ResolveResult {
  url: string;
  shortCircuit?: boolean;
  format?: string | null;
}
type NextResolve = (specifier: string, context: unknown) => Promise<ResolveResult>;

export async function resolve(specifier: string, context: unknown, nextResolve: NextResolve): Promise<ResolveResult> {
  const local = SDK_MODULES[specifier];
  if (local) return { url: new URL(local, import.meta.url).href, shortCircuit: true, format: 'module' };
  return nextResolve(specifier, context);
}
