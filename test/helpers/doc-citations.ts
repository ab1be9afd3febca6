/**
 * Citations of the project's own documents in code comments — `DESIGN §4`, `HPKI-PROFILE §9.3`,
 * `docs/HPKI-PROFILE.md §2–§3`, `HPKI-PROFILE §2, §3.1 (…), §5` — and their resolution against the
 * numbered headings of docs/DESIGN.md and docs/HPKI-PROFILE.md (`## 4. …`, `### 9.3 …`).
 * Test-only, pure: text in, citations and the unresolved ones out.
 */

/** The documents code may cite, by the name used in citations. */
export type CitedDocument = "DESIGN" | "HPKI-PROFILE";

/** One section cited at one place: `line` is 1-based, `section` e.g. "9.3" or "7a". */
export interface Citation {
  file: string;
  line: number;
  document: CitedDocument;
  section: string;
  /** The citation as written (the document name through the last section of its list). */
  text: string;
}

/** Horizontal space, or a line break followed by a comment continuation (` * `, `// `, `# `). */
const GAP = String.raw`(?:[ \t]|\r?\n[ \t]*(?:\*(?!\/)|\/\/|#)?[ \t]*)`;
const NUMBER = String.raw`\d+[a-z]?(?:\.\d+)*`;
/** `§9.3`, `§10.5–10.7`, `§2–§3` (en dash or hyphen). */
const SECTION = String.raw`§${NUMBER}(?:${GAP}*[–-]${GAP}*§?${NUMBER})?`;
/** A parenthetical between list items: `§3.1 (Director → O and OU=Director), §5`. */
const ASIDE = String.raw`(?:${GAP}*\([^()]*\))?`;
const LIST = String.raw`${SECTION}(?:${ASIDE}${GAP}*(?:,|and|&)${GAP}*${SECTION})*`;
/**
 * The document name, optionally as a path (`docs/DESIGN.md`, `../shared/hpki/HPKI-PROFILE.md`),
 * not preceded by a letter or a dash so `HPKI CP §7.1` and `RFC 5280 §4` never match.
 */
const CITATION = new RegExp(
  String.raw`(?<![A-Za-z0-9_-])(?:[\w./-]*\/)?(DESIGN|HPKI-PROFILE)(?:\.md)?${GAP}+(${LIST})`,
  "g",
);
const SECTION_NUMBER = new RegExp(NUMBER, "g");

/** 1-based line of a character offset. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Every section cited in `text` (the contents of `file`). A range `§10.5–10.7` yields both ends;
 * a list `§1, §5` yields each item, each at the line where its `§` stands.
 */
export function findCitations(file: string, text: string): Citation[] {
  const found: Citation[] = [];
  for (const match of text.matchAll(CITATION)) {
    const document = match[1] as CitedDocument;
    const list = match[2];
    const listStart = match.index + match[0].length - list.length;
    // Numbers inside a parenthetical ("steps 5–6", "OU=Director") are not sections.
    const masked = list.replace(/\([^()]*\)/g, (aside) => " ".repeat(aside.length));
    for (const number of masked.matchAll(SECTION_NUMBER)) {
      found.push({
        file,
        line: lineOf(text, listStart + number.index),
        document,
        section: number[0],
        text: match[0].replace(/\s*\r?\n[ \t]*(?:\*|\/\/|#)?[ \t]*/g, " "),
      });
    }
  }
  return found;
}

/** Section numbers of a markdown document's numbered headings: `## 4. Issuance` → "4". */
export function headingSections(markdown: string): Set<string> {
  const sections = new Set<string>();
  for (const match of markdown.matchAll(/^#{1,6}[ \t]+(\d+[a-z]?(?:\.\d+)*)\.?[ \t]/gm)) sections.add(match[1]);
  return sections;
}

/** The citations whose section has no heading in the cited document. */
export function unresolvedCitations(
  citations: readonly Citation[],
  sections: Readonly<Record<CitedDocument, ReadonlySet<string>>>,
): Citation[] {
  return citations.filter((c) => !sections[c.document].has(c.section));
}

/**
 * The anchors GitHub gives a markdown document's headings: lower case, every character but
 * letters, marks, digits, `_`, `-` and spaces dropped, spaces turned into `-`; a repeated slug gets
 * `-1`, `-2`, … Headings inside fenced code blocks are not headings.
 */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = !fenced && /^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1].toLowerCase().replace(/[^\p{L}\p{M}\p{N}_\- ]/gu, "").replace(/ /g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** A relative markdown link to a heading: `[text](DESIGN.md#4-issuance-cycle-ia)` at a line. */
export interface AnchorLink {
  line: number;
  target: string;
  anchor: string;
}

/** Relative links with an anchor in `markdown` (`target` as written, "" for the same document). */
export function anchorLinks(markdown: string): AnchorLink[] {
  const links: AnchorLink[] = [];
  for (const m of markdown.matchAll(/\]\(((?:[^()#\s:]+\.md)?)#([^()\s]+)\)/g)) {
    links.push({ line: lineOf(markdown, m.index), target: m[1], anchor: decodeURIComponent(m[2]) });
  }
  return links;
}
