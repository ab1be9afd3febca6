/**
 * A small, strict RFC 4180 CSV reader for the files operators import (the licence register). No
 * CSV library is among the project's dependencies, and the format is small enough that a reader
 * whose every rule is visible here is safer than a lenient one that guesses.
 *
 * Rules: fields separated by ",", records by CRLF or LF (a lone CR also ends a record); a field
 * may be enclosed in double quotes, inside which "" is one quote and commas and line breaks are
 * data; a leading UTF-8 BOM is dropped; blank lines (no characters at all) are skipped. A quote
 * inside an unquoted field, text after a closing quote, or a quote left open at the end of the
 * file is a syntax error — such a file was not written by a CSV writer and is refused.
 */

/** One record with the 1-based physical line its first character is on (what an editor shows). */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** A syntax error at `line` (1-based); nothing of the file should be used. */
export class CsvSyntaxError extends Error {
  override name = "CsvSyntaxError";
  constructor(
    readonly line: number,
    message: string,
    readonly messageJa: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

/**
 * Splits `text` into records (see the module comment for the rules). Fields are returned exactly
 * as written, quotes removed; no trimming or normalisation happens here.
 * @throws CsvSyntaxError on a stray quote, text after a closing quote or an unterminated quote.
 */
export function parseCsv(text: string): CsvRecord[] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = "";
  let line = 1;
  let recordLine = 1;
  let quoted = false; // inside an open quoted field
  let wasQuoted = false; // the current field was quoted and is now closed
  let recordHasContent = false;

  const endField = () => {
    fields.push(field);
    field = "";
    wasQuoted = false;
  };
  const endRecord = () => {
    endField();
    if (recordHasContent) records.push({ line: recordLine, fields });
    fields = [];
    recordHasContent = false;
  };

  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
          wasQuoted = true;
        }
      } else {
        if (c === "\n" || (c === "\r" && s[i + 1] !== "\n")) line++;
        field += c;
      }
      continue;
    }
    if (c === ",") {
      recordHasContent = true;
      endField();
    } else if (c === "\r" || c === "\n") {
      if (c === "\r" && s[i + 1] === "\n") i++;
      endRecord();
      line++;
      recordLine = line;
    } else if (wasQuoted) {
      throw new CsvSyntaxError(line, "text after a closing quote (a field that contains quotes must be quoted whole, with each quote doubled)",
        "閉じ引用符の後に文字があります（引用符を含む項目は全体を \" で囲み、中の \" は \"\" と書いてください）");
    } else if (c === '"') {
      if (field !== "") {
        throw new CsvSyntaxError(line, "a quote inside an unquoted field (quote the whole field and double the quote)",
          "引用符で囲まれていない項目の途中に引用符があります（項目全体を \" で囲み、中の \" は \"\" と書いてください）");
      }
      quoted = true;
      recordHasContent = true;
    } else {
      field += c;
      recordHasContent = true;
    }
  }
  if (quoted) {
    throw new CsvSyntaxError(recordLine, "a quoted field is not closed before the end of the file", "引用符で始まる項目がファイルの終わりまで閉じられていません");
  }
  endRecord();
  return records;
}
