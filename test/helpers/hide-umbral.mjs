// `node --import test/helpers/hide-umbral.mjs …`: @nucypher/umbral-pre cannot be resolved, as in an
// installation made with `npm ci --omit=optional` (the package is GPL-3.0-only, src/pki/pre.ts).
import { register } from "node:module";

register(`data:text/javascript,${encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === "@nucypher/umbral-pre") {
    const e = new Error("Cannot find package '@nucypher/umbral-pre'");
    e.code = "ERR_MODULE_NOT_FOUND";
    throw e;
  }
  return next(specifier, context);
}`)}`);
