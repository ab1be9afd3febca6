/**
 * The demo's applicants (fictional people, facilities and addresses), matched to the demo licence
 * register (policies/demo/licence-register.csv) by licence number. Most go all the way to
 * handover; three must stop with a clear reason, as real ones do: a mistyped licence number, a
 * missing licence copy, and a second application while the first is in progress.
 */

export type DemoScenario = "complete" | "licence-mismatch" | "missing-document" | "duplicate";

export interface DemoApplicant {
  /** Licence (registration) number in the demo register. */
  licence: string;
  latin: string;
  /** Where the application is taken: a regional association's code, or the RA desk. */
  desk: "13-001" | "27-001" | "ra";
  organizationKanji: string;
  organizationLatin: string;
  managerRole?: string;
  sign: boolean;
  auth: boolean;
  scenario: DemoScenario;
  /** For licence-mismatch: the number the applicant wrote on the form. */
  writtenLicence?: string;
}

/** The two demo regional associations (地域受付審査局). */
export const DEMO_LRAS = [
  { code: "13-001", name: "東京都医師会（デモ）" },
  { code: "27-001", name: "大阪府医師会（デモ）" },
] as const;

const TOKYO = { organizationKanji: "東京中央病院", organizationLatin: "Tokyo Chuo Hospital" };
const OSAKA = { organizationKanji: "なにわ記念病院", organizationLatin: "Naniwa Memorial Hospital" };
const PHARMACY = { organizationKanji: "さくら薬局", organizationLatin: "Sakura Pharmacy" };
const DENTAL = { organizationKanji: "みなと歯科医院", organizationLatin: "Minato Dental Clinic" };

export const DEMO_APPLICANTS: DemoApplicant[] = [
  { licence: "442817", latin: "Taro Yamada", desk: "13-001", ...TOKYO, sign: true, auth: true, scenario: "complete" },
  { licence: "489263", latin: "Hanako Sato", desk: "13-001", ...TOKYO, sign: true, auth: true, scenario: "complete" },
  { licence: "351094", latin: "Makoto Takahashi", desk: "13-001", ...TOKYO, managerRole: "Director of Hospital", sign: true, auth: true, scenario: "complete" },
  { licence: "571806", latin: "Misaki Tanaka", desk: "13-001", ...TOKYO, sign: true, auth: false, scenario: "complete" },
  { licence: "546712", latin: "Kenta Ito", desk: "13-001", ...TOKYO, sign: true, auth: true, scenario: "complete" },
  { licence: "468530", latin: "Naoko Watanabe", desk: "13-001", ...TOKYO, sign: false, auth: true, scenario: "complete" },
  { licence: "599214", latin: "Sho Yamasaki", desk: "13-001", ...TOKYO, sign: true, auth: true, scenario: "licence-mismatch", writtenLicence: "599241" },
  { licence: "398452", latin: "Yumi Shimizu", desk: "13-001", ...PHARMACY, sign: true, auth: true, scenario: "complete" },
  { licence: "302761", latin: "Koji Yamaguchi", desk: "13-001", ...PHARMACY, managerRole: "Director of Pharmacy", sign: true, auth: true, scenario: "complete" },
  { licence: "125847", latin: "Takashi Abe", desk: "13-001", ...DENTAL, sign: true, auth: true, scenario: "complete" },
  { licence: "442817", latin: "Taro Yamada", desk: "13-001", ...TOKYO, sign: true, auth: true, scenario: "duplicate" },
  { licence: "312457", latin: "Yoko Nakamura", desk: "27-001", ...OSAKA, sign: true, auth: true, scenario: "complete" },
  { licence: "508941", latin: "Daisuke Kobayashi", desk: "27-001", ...OSAKA, sign: true, auth: true, scenario: "complete" },
  { licence: "386205", latin: "Emi Kato", desk: "27-001", ...OSAKA, managerRole: "Director of Hospital", sign: true, auth: true, scenario: "complete" },
  { licence: "615377", latin: "Takuya Yoshida", desk: "27-001", ...OSAKA, sign: true, auth: true, scenario: "missing-document" },
  { licence: "342118", latin: "Ryo Matsumoto", desk: "27-001", ...OSAKA, sign: true, auth: true, scenario: "complete" },
  { licence: "471039", latin: "Ayaka Mori", desk: "27-001", ...PHARMACY, sign: true, auth: false, scenario: "complete" },
  { licence: "154302", latin: "Chihiro Ishikawa", desk: "27-001", ...DENTAL, sign: true, auth: true, scenario: "complete" },
  { licence: "556093", latin: "Sakura Inoue", desk: "ra", ...TOKYO, sign: true, auth: true, scenario: "complete" },
  { licence: "385620", latin: "Mari Hashimoto", desk: "ra", ...PHARMACY, sign: true, auth: true, scenario: "complete" },
];

/**
 * After handover (issue 13 §10), one of each workflow on subscribers the demo has just handed a
 * card to (by licence number): a PIN locked after wrong tries and unblocked (asked at the Osaka
 * desk), a card lost and reissued, a renewal (with a new address), a name change after marriage
 * (the register extract policies/demo/licence-register-update.csv carries the new name) and a
 * dentist who becomes director of her clinic (O and OU=Director).
 */
export const DEMO_AFTER_HANDOVER = {
  pinUnblock: { licence: "312457", desk: "osaka-reviewer" },
  lostCard: { licence: "546712", grounds: "電話：通勤途中にカードを紛失（本人確認済み）" },
  renewal: { licence: "508941", address: "大阪府大阪市中央区本町二丁目2番2号", postalCode: "541-0053" },
  nameChange: { licence: "571806", nameKanji: "中島　美咲", nameKana: "ナカジマ　ミサキ", nameLatin: "Misaki Nakajima" },
  newDirector: { licence: "154302", managerRole: "Director of Clinic" },
} as const;
