/**
 * Japanese era dates (和暦) read and written, with the era boundaries as data (issue 12 §4).
 *
 * Each era starts on the day the gengō took effect (元号法 1979 and the era ordinances): 明治
 * counts here from 明治6年1月1日 = 1873-01-01, when the Gregorian calendar was adopted (太政官布告
 * 第337号; earlier 明治 dates are lunisolar and are not converted); 大正 1912-07-30; 昭和
 * 1926-12-25; 平成 1989-01-08 (昭和64年 ends on 1 月 7 日); 令和 2019-05-01 (平成31年 ends on 4 月 30 日).
 * The first year is written 元年 or 1. A date outside its era (平成31年5月1日, 昭和64年1月8日) is
 * refused, as e-Gov forms do, rather than silently moved to the next era.
 *
 * Accepted input (after NFKC: full-width digits and letters are fine): 2025-04-01, 2025/4/1,
 * 2025.4.1, 20250401, 2025年4月1日; 令和7年4月1日, 令和元年5月1日, R7.4.1, R07/04/01, r7-4-1,
 * H31.4.30, S64.1.7, T15.12.24, M45.7.29 (letters M/T/S/H/R, upper or lower case). Pure: no I/O.
 */
import { asciiNumericText } from "./jp-input.ts";

export interface Era {
  name: string;
  letter: string;
  /** First day (ISO date) of the era as converted here. */
  start: string;
  /** The era's number for its first day (1 except 明治, which is converted from 明治6年). */
  firstYear: number;
}

/** The eras, newest first (see the module comment for the sources). */
export const ERAS: readonly Era[] = [
  { name: "令和", letter: "R", start: "2019-05-01", firstYear: 1 },
  { name: "平成", letter: "H", start: "1989-01-08", firstYear: 1 },
  { name: "昭和", letter: "S", start: "1926-12-25", firstYear: 1 },
  { name: "大正", letter: "T", start: "1912-07-30", firstYear: 1 },
  { name: "明治", letter: "M", start: "1873-01-01", firstYear: 6 },
];

/** The Gregorian year of an era's year 1. */
const yearOne = (e: Era) => Number(e.start.slice(0, 4)) - e.firstYear + 1;

function isoOf(y: number, m: number, d: number): string | undefined {
  if (y < 1 || y > 9999) return undefined;
  const t = new Date(Date.UTC(y, m - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== m - 1 || t.getUTCDate() !== d) return undefined;
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}

const WESTERN = /^(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日?|(\d{2})(\d{2}))$/u;
const ERA_DATE = /^(明治|大正|昭和|平成|令和|[MTSHR])(元|\d{1,2})(?:年(\d{1,2})月(\d{1,2})日?|[-/.](\d{1,2})[-/.](\d{1,2}))$/iu;

/**
 * A date typed in Western or era form (see the module comment) as YYYY-MM-DD; undefined when it
 * is not a real date of that calendar (Feb 30, 平成31年5月1日, an unknown era).
 */
export function parseJapaneseDate(input: string): string | undefined {
  const s = asciiNumericText(input);
  const w = WESTERN.exec(s);
  if (w) {
    const y = Number(w[1]);
    const [m, d] = w[3] ? [w[3], w[4]] : w[5] ? [w[5], w[6]] : [w[7], w[8]];
    return isoOf(y, Number(m), Number(d));
  }
  const e = ERA_DATE.exec(s);
  if (!e) return undefined;
  const key = e[1].toUpperCase();
  const era = ERAS.find((x) => x.name === key || x.letter === key);
  if (!era) return undefined;
  const n = e[2] === "元" ? 1 : Number(e[2]);
  if (n < era.firstYear) return undefined;
  const iso = isoOf(yearOne(era) + n - 1, Number(e[3] ?? e[5]), Number(e[4] ?? e[6]));
  return iso && eraOf(iso) === era ? iso : undefined;
}

/** The era of an ISO date (undefined before 1873-01-01). */
export function eraOf(iso: string): Era | undefined {
  return ERAS.find((e) => iso >= e.start);
}

/** An ISO date in era form: "2025-04-01" → "令和7年4月1日", "2019-05-01" → "令和元年5月1日"; undefined before 1873. */
export function formatWareki(iso: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  const era = m ? eraOf(iso) : undefined;
  if (!m || !era) return undefined;
  const n = Number(m[1]) - yearOne(era) + 1;
  return `${era.name}${n === 1 ? "元" : n}年${Number(m[2])}月${Number(m[3])}日`;
}
