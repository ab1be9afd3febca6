/**
 * The one date format of the LRA, RA and IA consoles (issue 12 §4): pages and the handlebars
 * helpers `date`, `datetime` and `dateEra` (src/web/views.ts) all write dates through here.
 * Japanese: "2026年4月1日", "2026年4月1日 14:30" (Japan time); English: "1 Apr 2026",
 * "1 Apr 2026 14:30". Birth dates are shown with the era year beside the Western date, as staff
 * read them off 和暦 documents: "1980年（昭和55年）1月2日" / "2 Jan 1980 (昭和55年)". JSON keeps
 * ISO 8601. Pure: no I/O.
 */
import { isoDate } from "../pipeline/applications.ts";
import { formatWareki } from "../pipeline/wareki.ts";
import type { Lang } from "./i18n.ts";

const JST = "Asia/Tokyo";

function ymd(v: unknown): [number, number, number] | undefined {
  if (v == null || v === "") return undefined;
  const [y, m, d] = isoDate(v).split("-").map(Number);
  return y && m && d ? [y, m, d] : undefined;
}

/** A calendar date (YYYY-MM-DD or a DATE column) for a page: "2026年4月1日" / "1 Apr 2026". */
export function displayDate(v: unknown, lang: Lang): string {
  const p = ymd(v);
  if (!p) return v == null ? "" : String(v);
  const [y, m, d] = p;
  if (lang === "ja") return `${y}年${m}月${d}日`;
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
}

/** A date with its era year (birth dates): "1980年（昭和55年）1月2日" / "2 Jan 1980 (昭和55年)". */
export function displayDateWithEra(v: unknown, lang: Lang): string {
  const p = ymd(v);
  if (!p) return v == null ? "" : String(v);
  const [y, m, d] = p;
  const iso = `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
  const eraYear = formatWareki(iso)?.replace(/\d+月\d+日$/u, "");
  if (!eraYear) return displayDate(iso, lang);
  return lang === "ja" ? `${y}年（${eraYear}）${m}月${d}日` : `${displayDate(iso, lang)} (${eraYear})`;
}

/** A point in time for a page, in Japan time: "2026年4月1日 14:30" / "1 Apr 2026 14:30". */
export function displayDateTime(v: unknown, lang: Lang): string {
  if (v == null || v === "") return "";
  const t = v instanceof Date ? v : new Date(typeof v === "number" ? v : String(v));
  if (Number.isNaN(t.getTime())) return String(v);
  const p = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", { timeZone: JST, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .formatToParts(t)
      .map((x) => [x.type, x.value]),
  );
  return `${displayDate(`${p.year}-${p.month}-${p.day}`, lang)} ${p.hour}:${p.minute}`;
}
