/**
 * `hpki` command line. Thin: parse arguments, call a service, print (text, or one JSON object with
 * --json). Errors print "hpki: <message>" on stderr (or {"error": …} with --json) and exit 1.
 */
import { Command } from "commander";
import { loadConfig } from "../config.ts";
import { describeHomeCheck, secureHome } from "../store/home-permissions.ts";
import { registerAuditCommands } from "./audit.ts";
import { registerCaCommands } from "./ca.ts";
import { registerConfigCommands } from "./config.ts";
import { registerDbCommands } from "./db.ts";
import { registerCardCommands } from "./cards.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerInspectCommand } from "./inspect.ts";
import { registerIssueCommands } from "./issue.ts";
import { registerLraCommands } from "./lra.ts";
import { registerOperatorCommands } from "./operators.ts";
import { registerLicenceCommands } from "./licenses.ts";
import { registerPostcodeCommands } from "./postcodes.ts";
import { registerHcRoleCommands } from "./hcrole.ts";
import { registerCardReplacementCommands } from "./card-replacement.ts";
import { registerOcspCommands } from "./ocsp.ts";
import { registerPoboxCommands } from "./pobox.ts";
import { registerRevocationCommands } from "./revocation.ts";
import { registerRevocationRequestCommands } from "./revocation-requests.ts";
import { registerNoticeCommands } from "./notices.ts";
import { registerServeCommand } from "./serve.ts";
import { registerSsoCommands } from "./sso.ts";

const program = new Command()
  .name("hpki")
  .description("hpki-ca: certificate authority and registration system for Japan's Healthcare PKI (HPKI)")
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: true });

registerCaCommands(program);
registerConfigCommands(program);
registerCardCommands(program);
registerIssueCommands(program);
registerRevocationCommands(program);
registerRevocationRequestCommands(program);
registerNoticeCommands(program);
registerOcspCommands(program);
registerInspectCommand(program);
registerDemoCommand(program);
registerServeCommand(program);
registerLraCommands(program);
registerOperatorCommands(program);
registerLicenceCommands(program);
registerPostcodeCommands(program);
registerHcRoleCommands(program);
registerCardReplacementCommands(program);
registerAuditCommands(program);
registerSsoCommands(program);
registerPoboxCommands(program);
registerDbCommands(program);

// Secrets at rest: whatever this process creates is private to its user (files 0600, dirs 0700),
// and before any command runs $HPKI_HOME is checked and repaired (src/store/home-permissions.ts).
process.umask(0o077);
program.hook("preAction", () => {
  try {
    const cfg = loadConfig();
    process.stderr.write(describeHomeCheck(cfg, secureHome(cfg)));
  } catch (e) {
    const err = e as Error & { messageJa?: string };
    process.stderr.write(`hpki: ${err.message}\n${err.messageJa ? `hpki: ${err.messageJa}\n` : ""}`);
    process.exit(1);
  }
});

await program.parseAsync(process.argv);
