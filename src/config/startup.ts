/** The CLI's start-up check of the configuration (bin/hpki.js), before any command module loads. */
import { processConfig } from "../config.ts";
import { ConfigError } from "./schema.ts";

/**
 * Parses process.env once (processConfig). On a ConfigError prints it — "hpki: " lines in English
 * then Japanese, or one JSON object when `argv` has --json, as src/cli/run.ts does — and returns
 * true (the caller exits 1). `hpki config table` runs without a valid environment: it documents it.
 * Other errors propagate.
 */
export function reportConfigError(argv: readonly string[]): boolean {
  if (argv[2] === "config" && argv[3] === "table") return false;
  try {
    processConfig();
    return false;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (argv.includes("--json")) {
      process.stdout.write(`${JSON.stringify({ error: e.message, errorJa: e.messageJa, code: e.code, issues: e.problems })}\n`);
    } else {
      process.stderr.write(`hpki: ${e.message}\nhpki: ${e.messageJa}\n`);
    }
    return true;
  }
}
