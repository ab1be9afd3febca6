/**
 * Why a login was refused, in both languages: the verifier's codes (MESSAGES in
 * pki/path-validation.ts) plus the SSO center's own. The same text is the page's message and the
 * error_description the relying party receives with access_denied (issue 14 §4).
 */
import { MESSAGES } from "../pki/path-validation.ts";
import type { Lang } from "./views.ts";

/** A refused login: a stable code and a detail for the audit record (never shown to the service). */
export interface Refusal {
  code: string;
  detail: string;
}

const SSO_MESSAGES: Record<string, Record<Lang, string>> = {
  "acr-not-met": {
    en: "The service requires a login with the HPKI card and its PIN (login agent); this way of logging in is not enough.",
    ja: "このサービスはHPKIカードとPINによるログイン（ログインエージェント）を求めています。この方法ではログインできません。",
  },
  cancelled: { en: "The login was cancelled.", ja: "ログインは取り消されました。" },
  "consent-denied": {
    en: "The person did not allow the information or rights the service asked for.",
    ja: "サービスが求めた情報・権限の提供は許可されませんでした。",
  },
};

/** Whether `code` names a known refusal (anything else posted to the abort route reads "cancelled"). */
export const isRefusalCode = (code: unknown): code is string => typeof code === "string" && (code in MESSAGES || code in SSO_MESSAGES);

/** The text of refusal `code` in `lang`. */
export function refusalText(code: string, lang: Lang): string {
  return (MESSAGES as Record<string, Record<Lang, string>>)[code]?.[lang] ?? SSO_MESSAGES[code]?.[lang] ?? SSO_MESSAGES.cancelled[lang];
}
