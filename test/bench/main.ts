/**
 * Benchmarks: `npm run bench -- <name> [options]`. Each prints a table and, as its last line,
 * one JSON object. Figures are always reported next to a baseline measured in the same run.
 */
const [name, ...args] = process.argv.slice(2);
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<unknown> }>> = {
  issue: () => import("./issue.ts"),
  crl: () => import("./crl.ts"),
  pipeline: () => import("./pipeline.ts"),
  sso: () => import("./sso.ts"),
  ocsp: () => import("./ocsp.ts"),
  faults: () => import("./faults.ts"),
  "faults-issuance": () => import("./faults-issuance.ts"),
  "faults-hsm": () => import("./faults-hsm.ts"),
  pobox: () => import("./pobox.ts"),
  "pobox-reencrypt": () => import("./pobox-reencrypt.ts"),
};
if (!name || !benches[name]) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join("|")}> [options]\n`);
  process.exit(2);
}
await (await benches[name]()).run(args);
