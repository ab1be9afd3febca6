/**
 * Every `DESIGN §…` and `HPKI-PROFILE §…` cited in the repository resolves to a numbered heading of
 * docs/DESIGN.md or docs/HPKI-PROFILE.md (issue 11 §8). A failure names file:line of each citation
 * that points nowhere. The synthetic inputs below spell the document names in two pieces so that the
 * scan of this very file does not read them as citations.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  anchorLinks,
  findCitations,
  headingAnchors,
  headingSections,
  unresolvedCitations,
  type Citation,
  type CitedDocument,
} from "../helpers/doc-citations.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const SCANNED = ["src", "test", "policies", "migrations", "scripts", "views", "hsm", "bin", "docs", "README.md"];
const TEXT_FILE = /\.(ts|js|mjs|cjs|yaml|yml|json|sh|md|hbs|csv|conf|txt)$/;

/** Files under `path` (relative to the repository root), skipping dependencies and dot folders. */
function filesUnder(path: string): string[] {
  const absolute = join(root, path);
  if (TEXT_FILE.test(path)) return [absolute];
  const files: string[] = [];
  for (const entry of readdirSync(absolute, { withFileTypes: true, recursive: true })) {
    const full = join(entry.parentPath, entry.name);
    if (!entry.isFile() || !TEXT_FILE.test(entry.name)) continue;
    if (/(^|\/)(node_modules|\.[^/]+)\//.test(relative(root, full))) continue;
    files.push(full);
  }
  return files;
}

const docs: Record<CitedDocument, Set<string>> = {
  DESIGN: headingSections(readFileSync(join(root, "docs/DESIGN.md"), "utf8")),
  "HPKI-PROFILE": headingSections(readFileSync(join(root, "docs/HPKI-PROFILE.md"), "utf8")),
};
const D = "DES" + "IGN";
const P = "HPKI-" + "PROFILE";

describe("citation scanner", () => {
  it("reads single sections, lists, ranges, paths and comment continuations", () => {
    const text = [
      "/**",
      ` * Worker (${D} §1, §5; ${P} §9.5, RFC 5280 §5.3.1).`,
      ` * Rules: ${P} §2, §3.1 (Director → O and OU=Director), §5 (organizations), §6 (hcRole);`,
      ` * Handover (${P} §9.3 steps 5–6) and ${P}.md §2–§3, docs/${D}.md §4 step 3, ${P}`,
      " * §10.5–10.7. Not ours: HPKI CP §7.1.",
      " */",
    ].join("\n");
    const cited = findCitations("x.ts", text).map((c) => `${c.line}:${c.document}:${c.section}`);
    expect(cited).toEqual([
      "2:DESIGN:1", "2:DESIGN:5", "2:HPKI-PROFILE:9.5",
      "3:HPKI-PROFILE:2", "3:HPKI-PROFILE:3.1", "3:HPKI-PROFILE:5", "3:HPKI-PROFILE:6",
      "4:HPKI-PROFILE:9.3", "4:HPKI-PROFILE:2", "4:HPKI-PROFILE:3", "4:DESIGN:4",
      "5:HPKI-PROFILE:10.5", "5:HPKI-PROFILE:10.7",
    ]);
  });

  it("reads numbered headings with and without a trailing dot", () => {
    const sections = headingSections("# Title\n## 1. Picture\n### 9.3 Flow\n## 7a. PO box\n#### 10.5 hcRole\n## Index\n");
    expect([...sections]).toEqual(["1", "9.3", "7a", "10.5"]);
  });

  it("fails a citation of a missing section, naming file and line", () => {
    const text = `// ok: ${D} §4\n// gone: ${P} §6.9 and ${D} §42\n`;
    const missing = unresolvedCitations(findCitations("src/x.ts", text), {
      DESIGN: new Set(["4"]),
      "HPKI-PROFILE": new Set(["6", "6.3"]),
    });
    expect(missing.map((c) => `${c.file}:${c.line} ${c.document} §${c.section}`)).toEqual([
      `src/x.ts:2 ${P} §6.9`,
      `src/x.ts:2 ${D} §42`,
    ]);
  });
});

describe("docs/ resolves every citation in the repository", () => {
  const citations: Citation[] = SCANNED.flatMap(filesUnder).flatMap((file) =>
    findCitations(relative(root, file), readFileSync(file, "utf8")),
  );

  it("finds the code's citations (the scan is not empty)", () => {
    expect(citations.filter((c) => c.document === "DESIGN").length).toBeGreaterThan(20);
    expect(citations.filter((c) => c.document === "HPKI-PROFILE").length).toBeGreaterThan(20);
  });

  it("has a heading in docs/ for each cited section", () => {
    const missing = unresolvedCitations(citations, docs).map(
      (c) => `${c.file}:${c.line} cites ${c.document} §${c.section} (docs/${c.document}.md has no such heading): ${c.text}`,
    );
    expect(missing).toEqual([]);
  });
});

describe("links between the docs", () => {
  it("computes GitHub heading anchors", () => {
    const md = "## 3. The pipeline (state machines as data)\n### 9.1 Roles\n## 3. 署名用証明書 (sign)\n```\n# not a heading\n```\n### 9.1 Roles\n";
    expect([...headingAnchors(md)]).toEqual(["3-the-pipeline-state-machines-as-data", "91-roles", "3-署名用証明書-sign", "91-roles-1"]);
  });

  it("resolves every #anchor link of docs/ and README.md", () => {
    const sources = [...filesUnder("docs"), join(root, "README.md")].filter((f) => f.endsWith(".md"));
    const broken: string[] = [];
    let checked = 0;
    for (const file of sources) {
      for (const link of anchorLinks(readFileSync(file, "utf8"))) {
        checked++;
        const target = link.target ? join(dirname(file), link.target) : file;
        const anchors = headingAnchors(readFileSync(target, "utf8"));
        if (!anchors.has(link.anchor)) broken.push(`${relative(root, file)}:${link.line} links to ${relative(root, target)}#${link.anchor}`);
      }
    }
    expect(checked).toBeGreaterThan(10);
    expect(broken).toEqual([]);
  });
});
