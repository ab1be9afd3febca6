/**
 * The import graph keeps the layering of DESIGN §2: src/pki imports nothing of ours outside it; no
 * role imports another role; the plumbing (src/web) and the pipeline (src/pipeline) import no role.
 * Static imports, re-exports and dynamic import("…") all count; type-only imports too (a type
 * import still ties one layer's shape to another's).
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const ROLES = ["lra", "ra", "ia", "repo", "sso", "pobox"];

/** Top folder of a file under src/ ("pki", "ia", …), or null outside src. */
function area(file: string): string | null {
  const rel = path.relative(path.join(ROOT, "src"), file);
  if (rel.startsWith("..")) return null;
  const parts = rel.split(path.sep);
  return parts.length > 1 ? parts[0] : parts[0].replace(/\.ts$/, "");
}

/** Every relative import of `file`'s source text, resolved to absolute paths. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']+)\1/g;
  for (const m of text.matchAll(re)) out.push(path.resolve(path.dirname(file), m[2]));
  return out;
}

/** The layering rules broken by the edge from → to, as messages (empty: allowed). */
export function layeringViolations(from: string, to: string): string[] {
  const a = area(from);
  const b = area(to);
  if (a === null || b === null || a === b) return [];
  const where = `${path.relative(ROOT, from)} → ${path.relative(ROOT, to)}`;
  const out: string[] = [];
  if (a === "pki") out.push(`pki imports nothing of ours outside src/pki: ${where}`);
  if (ROLES.includes(a) && ROLES.includes(b)) out.push(`no role imports another role: ${where}`);
  if (a === "web" && ROLES.includes(b)) out.push(`plumbing (src/web) imports no role: ${where}`);
  if (a === "pipeline" && ROLES.includes(b)) out.push(`the pipeline imports no role: ${where}`);
  return out;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("import-graph layering (DESIGN §2)", () => {
  it("the tree keeps every rule", () => {
    const files = sourceFiles(path.join(ROOT, "src"));
    expect(files.length).toBeGreaterThan(100);
    const violations = files.flatMap((f) => importsOf(f, fs.readFileSync(f, "utf8")).flatMap((to) => layeringViolations(f, to)));
    expect(violations).toEqual([]);
  });

  it("fails on a deliberately wrong import (each rule)", () => {
    const src = (p: string) => path.join(ROOT, "src", p);
    const wrong = [
      [src("pki/tbs.ts"), 'import { openDatabase } from "../store/db.ts";'],
      [src("sso/provider.ts"), 'import type { Actor } from "../ia/issuance.ts";'],
      [src("web/server.ts"), 'const lra = () => import("../lra/server.ts");'],
      [src("pipeline/licence-register.ts"), 'export { issue } from "../ia/issuance.ts";'],
    ] as const;
    for (const [file, line] of wrong) {
      const found = importsOf(file, line).flatMap((to) => layeringViolations(file, to));
      expect(found, line).toHaveLength(1);
    }
    // Allowed edges stay allowed: a role into the pipeline, the CLI into a role.
    expect(layeringViolations(src("ia/cards.ts"), src("pipeline/operator.ts"))).toEqual([]);
    expect(layeringViolations(src("cli/role-factories.ts"), src("ia/server.ts"))).toEqual([]);
  });
});
