/**
 * `hpki operators add|list|disable|enable|bind-card|unbind-card`: console operator accounts
 * (database only, no HSM). `bind-card` lets an operator sign in to the consoles with their own
 * HPKI card: the authentication certificate is verified first (chain to our CAs, validity, key
 * usage, policy, revocation), then its person key (issuer + subscriber id, stable across renewal)
 * is bound; `unbind-card` removes such bindings (by a certificate serial, a subscriber id, or all)
 * and `list` shows them.
 * `operators add` prints the password (when generated) and the TOTP secret and otpauth URI once:
 * they are stored only as an argon2id hash and, for TOTP, as the secret the server checks codes
 * against; nothing prints them again.
 */
import fs from "node:fs";
import os from "node:os";
import type { Command } from "commander";
import { loadConfig } from "../config.ts";
import { ValidationError } from "../pipeline/errors.ts";
import { OPERATOR_ROLES } from "../pipeline/operator.ts";
import { openDatabase, type Db } from "../store/db.ts";
import { bindOperatorCertificate, listOperatorCertificates, unbindOperatorCertificate, type UnbindSelector } from "../card-login/card-login.ts";
import { withOperatorSecrets } from "../operators/operator-secrets.ts";
import { addOperator, listOperators, setOperatorDisabled, } from "../operators/operators.ts";
import type { Actor } from "../audit/actor.ts";
import { fromPemOrDer } from "../pki/pem.ts";
import { runCommand, table } from "./run.ts";

/** The administrator behind a CLI call, as written into audit records. */
export function cliAdminActor(): Actor {
  return { actor: `cli:${os.userInfo().username}`, role: "admin" };
}

/** Runs `body` with the database of the configuration (HPKI_HOME / DATABASE_URL), then closes it. */
export async function withDatabase(
  opts: { json?: boolean },
  body: (db: Db) => Promise<{ text: string; json: unknown }>,
): Promise<void> {
  await runCommand(opts, async () => {
    const db = await openDatabase(loadConfig());
    try {
      return await body(db);
    } finally {
      await db.destroy();
    }
  });
}

export function registerOperatorCommands(program: Command): void {
  const ops = program.command("operators").description("console operators (LRA, RA, IA, auditor, admin accounts)");
  ops
    .command("add")
    .description("create an operator; prints the TOTP secret (and a generated password) once")
    .requiredOption("--username <name>", "login name (a-z 0-9 . _ -)")
    .requiredOption("--role <role>", OPERATOR_ROLES.join(" | "))
    .option("--lra <code>", "regional association code, for lra_reviewer and lra_manager (e.g. 13-001)")
    .option("--display-name <name>", "name shown in the consoles (default: the username)")
    .option("--password <password>", "initial password (at least 12 characters); generated when absent")
    .option("--json", "print one JSON object")
    .action(async (o: { username: string; role: string; lra?: string; displayName?: string; password?: string; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const input = { username: o.username, role: o.role, lraCode: o.lra, displayName: o.displayName, password: o.password };
        const r = await withOperatorSecrets(loadConfig(), db, () => addOperator(db, input, cliAdminActor()));
        const json = { ...r.operator, lraCode: o.lra ?? null, password: r.passwordGenerated ? r.password : undefined, totpSecret: r.totpSecret, otpauthUri: r.otpauthUri };
        const lines = [
          `operator ${r.operator.username} (${r.operator.role}${o.lra ? `, ${o.lra}` : ""}) created`,
          ...(r.passwordGenerated ? [`password:     ${r.password}`] : []),
          `TOTP secret:  ${r.totpSecret}`,
          `otpauth URI:  ${r.otpauthUri}`,
          "Shown once: hand these to the operator over a trusted channel. / この内容は一度だけ表示されます。",
        ];
        return { text: lines.join("\n"), json };
      }),
    );
  ops
    .command("list")
    .description("list operators (no secrets)")
    .option("--json", "print one JSON object")
    .action(async (o: { json?: boolean }) =>
      withDatabase(o, async (db) => {
        const list = await listOperators(db);
        const bindings = await listOperatorCertificates(db);
        const cardsOf = (id: number) => bindings.filter((b) => b.operatorId === id);
        const rows = [["username", "display name", "role", "LRA", "state", "card sign-in"]];
        for (const op of list) {
          const state = op.disabled ? "disabled" : op.lockedUntil && op.lockedUntil > new Date() ? `locked until ${op.lockedUntil.toISOString()}` : "active";
          rows.push([op.username, op.displayName, op.role, op.lraCode ?? "-", state, cardsOf(op.id).map((b) => b.subscriberId).join(", ") || "-"]);
        }
        const cardRows = [["username", "subscriber id", "issuer", "bound", "by"], ...bindings.map((b) => [b.username, b.subscriberId, b.issuer, b.at.toISOString(), b.boundBy])];
        return {
          text: list.length ? [table(rows), ...(bindings.length ? ["", "card bindings (hpki operators bind-card / unbind-card):", table(cardRows)] : [])].join("\n") : "no operators",
          json: {
            operators: list.map((op) => ({
              ...op, lockedUntil: op.lockedUntil?.toISOString() ?? null, createdAt: op.createdAt.toISOString(),
              cards: cardsOf(op.id).map((b) => ({ issuer: b.issuer, subscriberId: b.subscriberId, boundBy: b.boundBy, at: b.at.toISOString() })),
            })),
          },
        };
      }),
    );
  for (const [name, disabled] of [["disable", true], ["enable", false]] as const) {
    ops
      .command(name)
      .description(disabled ? "disable an operator (their sessions stop at the next request)" : "enable a disabled operator")
      .requiredOption("--username <name>", "login name")
      .option("--json", "print one JSON object")
      .action(async (o: { username: string; json?: boolean }) =>
        withDatabase(o, async (db) => {
          const op = await setOperatorDisabled(db, o.username, disabled, cliAdminActor());
          return { text: `operator ${op.username} ${disabled ? "disabled" : "enabled"}`, json: { ...op, disabled } };
        }),
      );
  }
  ops
    .command("bind-card")
    .description("bind the holder of an HPKI authentication certificate to an operator (card sign-in to the consoles)")
    .requiredOption("--username <name>", "login name")
    .requiredOption("--cert <file>", "the operator's authentication certificate (PEM or DER)")
    .option("--json", "print one JSON object")
    .action(async (o: { username: string; cert: string; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const b = await bindOperatorCertificate(db, o.username, fromPemOrDer(fs.readFileSync(o.cert), "CERTIFICATE"), cliAdminActor());
        return {
          text: `card of ${b.subscriberId} (${b.issuer}) bound to operator ${b.username} / カードをオペレータに登録しました`,
          json: { ...b, at: b.at.toISOString() },
        };
      }),
    );
  ops
    .command("unbind-card")
    .description("remove an operator's card binding: card sign-in of that holder is refused from then on (sessions already open are not ended: disable the operator for that)")
    .requiredOption("--username <name>", "login name")
    .option("--serial <hex>", "the holder named by this certificate of ours (the binding is of the person: it covers their renewed cards too)")
    .option("--subscriber-id <id>", "the holder with this subscriber id (as `hpki operators list` shows)")
    .option("--all", "every card bound to the operator")
    .option("--json", "print one JSON object")
    .action(async (o: { username: string; serial?: string; subscriberId?: string; all?: boolean; json?: boolean }) =>
      withDatabase(o, async (db) => {
        const given = [o.serial !== undefined, o.subscriberId !== undefined, o.all === true].filter(Boolean).length;
        if (given !== 1) {
          throw new ValidationError([{ field: "selector", message: "give exactly one of --serial, --subscriber-id, --all", messageJa: "--serial、--subscriber-id、--all のいずれか一つを指定してください。" }]);
        }
        const selector: UnbindSelector = o.serial !== undefined ? { serialHex: o.serial } : o.subscriberId !== undefined ? { subscriberId: o.subscriberId } : { all: true };
        const removed = await unbindOperatorCertificate(db, o.username, selector, cliAdminActor());
        return {
          text: removed.map((b) => `card of ${b.subscriberId} (${b.issuer}) unbound from operator ${b.username} / カードの登録を解除しました`).join("\n"),
          json: { username: removed[0].username, unbound: removed.map((b) => ({ issuer: b.issuer, subscriberId: b.subscriberId, boundBy: b.boundBy, at: b.at.toISOString() })) },
        };
      }),
    );
}
