/**
 * `hpki` command line. Thin: parse arguments, call a service, print (text, or one JSON object with
 * --json). Errors print "hpki: <message>" on stderr (or {"error": …} with --json) and exit 1.
 */
import { Command } from "commander";
import { registerAuditCommands } from "./audit.ts";
import { registerCaCommands } from "./ca.ts";
import { registerConfigCommands } from "./config.ts";
import { registerCardCommands } from "./cards.ts";
import { registerDemoCommand } from "./demo.ts";
import { registerInspectCommand } from "./inspect.ts";
import { registerIssueCommands } from "./issue.ts";
import { registerLraCommands } from "./lra.ts";
import { registerOperatorCommands } from "./operators.ts";
import { registerLicenceCommands } from "./licenses.ts";
import { registerOcspCommands } from "./ocsp.ts";
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
registerAuditCommands(program);
registerSsoCommands(program);

await program.parseAsync(process.argv);
