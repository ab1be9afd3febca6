#!/usr/bin/env node
// The hpki CLI runs the TypeScript sources directly through tsx: no build step to forget.
import { register } from "tsx/esm/api";

register();
// The configuration is read and checked once, before any command module loads: a bad value stops
// the start here with its bilingual message (src/config/schema.ts).
const { reportConfigError } = await import("../src/config/startup.ts");
if (reportConfigError(process.argv)) process.exit(1);
await import("../src/cli/main.ts");
