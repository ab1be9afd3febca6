/** Shared plumbing for CLI commands: configuration, IA context, output and error handling. */
import os from "node:os";
import readline from "node:readline";
import { loadConfig, type Config } from "../config.ts";
import { openIaContext, type IaContext } from "../ia/context.ts";
import type { Actor } from "../audit/actor.ts";

export interface OutputOptions {
  json?: boolean;
}

/** The operator behind a CLI call, as written into audit records. */
export function cliActor(): Actor {
  return { actor: `cli:${os.userInfo().username}`, role: "ia" };
}

/** Prints `value` as one JSON line. BigInt-free; Buffers are not expected here. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Runs a command body with an open IA context, closing it afterwards; reports errors the CLI way
 * and sets the exit code. `body` returns what to print: a string (text mode) and the JSON value.
 */
export async function withIa(
  opts: OutputOptions,
  body: (ctx: IaContext, cfg: Config) => Promise<{ text: string; json: unknown }>,
): Promise<void> {
  await runCommand(opts, async () => {
    const cfg = loadConfig();
    const ctx = await openIaContext(cfg);
    try {
      return await body(ctx, cfg);
    } finally {
      await ctx.close();
    }
  });
}

/** Runs `body` and prints its result; on error prints the message and sets exit code 1. */
export async function runCommand(opts: OutputOptions, body: () => Promise<{ text: string; json: unknown }>): Promise<void> {
  try {
    const r = await body();
    if (opts.json) {
      if (r.json !== undefined) printJson(r.json);
    }
    else if (r.text) process.stdout.write(r.text.endsWith("\n") ? r.text : `${r.text}\n`);
  } catch (e) {
    const err = e as Error & { issues?: unknown; violations?: unknown; code?: string; messageJa?: string };
    if (opts.json) {
      printJson({ error: err.message, errorJa: err.messageJa, code: err.code, issues: err.issues, violations: err.violations });
    } else {
      process.stderr.write(`${formatError(err)}\n`);
    }
    process.exitCode = 1;
  }
}

/**
 * Text-mode error: the message, the Japanese message when the error carries one, and one line
 * per field issue (subject validation) in both languages.
 */
export function formatError(err: Error & { issues?: unknown; messageJa?: string }): string {
  const lines = [`hpki: ${err.message}`];
  if (err.messageJa) lines.push(`hpki: ${err.messageJa}`);
  if (Array.isArray(err.issues)) {
    for (const i of err.issues as { field?: string; message?: string; messageJa?: string }[]) {
      if (i && typeof i === "object" && i.field) lines.push(`  - ${i.field}: ${i.messageJa ?? ""}${i.messageJa && i.message ? " / " : ""}${i.message ?? ""}`);
    }
  }
  return lines.join("\n");
}

/** Fixed-width table for text output (East Asian wide characters count double). */
export function table(rows: string[][]): string {
  const width = (s: string) => [...s].reduce((n, ch) => n + (/[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1), 0);
  const cols = rows[0]?.length ?? 0;
  const w = Array.from({ length: cols }, (_, i) => Math.max(...rows.map((r) => width(r[i] ?? ""))));
  return rows.map((r) => r.map((c, i) => c + " ".repeat(w[i] - width(c))).join("  ").trimEnd()).join("\n");
}

/**
 * Reads a secret (a card PIN, an operator's password) from the terminal without echoing it — or,
 * with `echo`, a plain answer such as a TOTP code; the prompt goes to stderr. @throws when stdin is
 * no terminal (then `option` is the way to give it).
 */
export async function askSecret(what: { en: string; ja: string }, option: string, opts: { echo?: boolean } = {}): Promise<string> {
  if (!process.stdin.isTTY) throw new Error(`no terminal to ask for the ${what.en}: use ${option} / 端末がないため${what.ja}を入力できません`);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const out = rl as unknown as { _writeToOutput(s: string): void };
  process.stderr.write(`${what.en} / ${what.ja}: `);
  if (!opts.echo) out._writeToOutput = () => {};
  try {
    return (await new Promise<string>((r) => rl.question("", r))).trim();
  } finally {
    rl.close();
    if (!opts.echo) process.stderr.write("\n");
  }
}
