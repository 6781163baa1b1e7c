// Resolves the WIT imports (`wasmcni:plugin/<iface>@1.2.0`) to the fakes
// beside this file, so the component adapters run in node.
export async function resolve(specifier, context, next) {
  const m = /^wasmcni:plugin\/([a-z-]+)@1\.2\.0$/.exec(specifier);
  if (m) return { url: new URL(`./${m[1]}.js`, import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
