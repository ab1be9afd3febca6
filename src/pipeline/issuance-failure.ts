/**
 * Why an issuance request failed, for the desks (issue 12 §1): the IA records its worker's English
 * error (issuance_requests.last_error); the RA sees it explained in Japanese and English with the
 * application form fields it names — the subject paths of a SubjectError ("invalid subject:
 * organization.latin: …") mapped through the issuability dry run's field table (issuability.ts
 * formField), and the dry run re-run on the application as it stands now, so a corrected field
 * shows as solved. The raw error stays available beside it for the IA.
 */
import type { FieldIssue } from "./errors.ts";
import { formField, issuabilityProblems, type IssuabilityPolicies, type IssuabilityProblem } from "./issuability.ts";

/** The explanation of one failed request. */
export interface IssuanceFailure {
  /** Japanese explanation of the cause and what to do. */
  messageJa: string;
  /** English explanation. */
  message: string;
  /** The form fields the IA's error names (input name, Japanese and English label). */
  fields: { field: string; ja: string; en: string }[];
  /** The dry run on the application now: empty once the data would issue. */
  problems: IssuabilityProblem[];
}

/** Subject paths named by a SubjectError message ("invalid subject: a.b: …; c: …"). */
function subjectPaths(error: string): string[] {
  if (!/^invalid subject:/.test(error)) return [];
  return [...new Set([...error.matchAll(/(?:: |; )([\w.]+): /g)].map((m) => m[1]))];
}

/**
 * Japanese explanation of a worker error message (the worker records English messages). Names
 * the likely cause and what to do; the original message is shown beside it.
 */
export function explainIssuanceFailureJa(error: string): string {
  if (/lease has expired or was taken/.test(error)) return "処理中に発行依頼が別の発行処理に引き継がれたため、この処理では記録しませんでした。発行依頼の状態を確認してください。";
  if (/needs inspection/.test(error)) return "カードの状態が記録と一致しないため、カードを点検対象として取り置きました。再発行では新しいカードを使います。";
  if (/^invalid subject:/.test(error)) {
    const names: Record<string, string> = {
      hcRole: "資格（hcRole）", "name.latin": "氏名（ローマ字）", "name.kanji": "氏名（漢字）",
      "organization.latin": "施設名（英字）", "organization.kanji": "施設名（漢字）", subscriberId: "加入者ID",
    };
    const list = subjectPaths(error).map((f) => names[f] ?? f).join("、");
    return `申込内容が証明書プロファイルの要件を満たさないため、証明書を発行しませんでした${list ? `（${list}）` : ""}。登録局で申込内容を確認・訂正してから再発行してください。`;
  }
  if (/lint/i.test(error)) return "証明書プロファイル検査（lint）で不合格となったため、署名しませんでした。プロファイルと申込内容を確認してから再発行してください。";
  if (/is not in the HSM|CA key/.test(error)) return "発行局CAの鍵がHSMに見つかりません。HSMの状態を確認してから再発行してください。";
  if (/PIN|CKR_|card|token|HSM|PKCS#11/i.test(error)) return "HSMまたはカードの操作に失敗しました。カード・HSMの状態を確認してから再発行してください（同じカードで再開します）。";
  if (/profile/.test(error)) return "証明書プロファイルの設定に問題があります。policies/ の設定を確認してください。";
  return "発行処理中にエラーが発生しました。詳細を確認し、原因を取り除いてから再発行してください。";
}

/**
 * Explains failed request error `error` for application row `app` requesting `profiles`: the
 * fields the error names, the dry run on the current data, and a message in both languages —
 * for a data problem, what to correct; otherwise the IA-side cause (explainIssuanceFailureJa).
 */
export function explainIssuanceFailure(error: string, app: Record<string, unknown>, profiles: readonly string[], policies: IssuabilityPolicies): IssuanceFailure {
  const fields = subjectPaths(error).map((p) => formField(p, app));
  const problems = issuabilityProblems(app, profiles, policies);
  for (const p of problems) {
    if (!fields.some((f) => f.field === p.field) && p.field !== "(certificate)") fields.push({ field: p.field, ...labelOf(p) });
  }
  if (fields.length) {
    const ja = fields.map((f) => f.ja).join("、");
    const en = fields.map((f) => f.en).join(", ");
    const fixed = problems.length === 0;
    return {
      fields, problems,
      messageJa: fixed
        ? `発行局で申込内容が証明書の要件を満たさず、発行できませんでした（${ja}）。申込内容は訂正済みです。再発行してください。`
        : `発行局で申込内容が証明書の要件を満たさず、発行できませんでした（${ja}）。申込内容を訂正してから再発行してください。`,
      message: fixed
        ? `The issuing office could not issue the certificates from the application (${en}). The application has been corrected; retry.`
        : `The issuing office could not issue the certificates from the application (${en}). Correct the application, then retry.`,
    };
  }
  return { fields, problems, messageJa: explainIssuanceFailureJa(error), message: `The issuing office could not issue the card: ${error}` };
}

/** The labels of a dry-run problem's field (its message starts with them). */
function labelOf(p: FieldIssue): { ja: string; en: string } {
  return { ja: p.messageJa.split("：")[0], en: p.message.split(":")[0] };
}
