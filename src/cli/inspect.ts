/** `hpki inspect FILE`: a certificate (PEM or DER) with its HPKI meaning. */
import fs from "node:fs";
import type { Command } from "commander";
import { loadPolicies } from "../policies.ts";
import { describeCertificate, formatCertificateDescription } from "../pki/inspect.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { runCommand } from "./run.ts";

export function registerInspectCommand(program: Command): void {
  program
    .command("inspect")
    .description("print a certificate (PEM or DER) with its HPKI meaning: names, kanji name, hcRole, policies, key usage, validity in JST")
    .argument("<file>", "certificate file")
    .option("--json", "print one JSON object (field hcRole holds the role string)")
    .option("--lang <lang>", "ja or en", process.env.LANG?.startsWith("ja") ? "ja" : "en")
    .action(async (file: string, o: { json?: boolean; lang: string }) =>
      runCommand(o, async () => {
        if (o.lang !== "ja" && o.lang !== "en") throw new Error("--lang must be ja or en");
        const der = fromPemOrDer(fs.readFileSync(file), "CERTIFICATE");
        const d = describeCertificate(der);
        return { text: formatCertificateDescription(d, o.lang, loadPolicies().hcRoles), json: d };
      }),
    );
}
