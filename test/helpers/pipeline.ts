/**
 * Registration-pipeline fixtures: applicants from the demo licence register, sample scanned
 * documents (real PDF/PNG/JPEG signatures, so the byte sniffer accepts them) and application form
 * input built from a register row.
 */
import fs from "node:fs";
import path from "node:path";
import { parseCsv } from "../../src/pipeline/csv-rfc4180.ts";
import { POLICIES_DIR } from "../../src/policies.ts";

export const DEMO_LICENCE_REGISTER = path.join(POLICIES_DIR, "demo", "licence-register.csv");

export interface RegisterRow {
  qualification: string;
  registration_number: string;
  registration_date: string;
  name_kanji: string;
  name_kana: string;
  birth_date: string;
}

/** The rows of policies/demo/licence-register.csv. */
export function demoRegisterRows(): RegisterRow[] {
  const [header, ...rows] = parseCsv(fs.readFileSync(DEMO_LICENCE_REGISTER, "utf8").replace(/^\uFEFF/, "")).map((r) => r.fields);
  return rows.filter((r) => r.length > 1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])) as unknown as RegisterRow);
}

/** Application form input (as the LRA console posts it) for a register row; `over` replaces fields. */
export function applicationInputFor(r: RegisterRow, i: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  // Letters only (a subject CN in Latin letters): the index spelt with A–J for 0–9.
  const latin = `Applicant ${[...String(i)].map((d) => "ABCDEFGHIJ"[Number(d)]).join("")}`;
  return {
    nameKanji: r.name_kanji,
    nameKana: r.name_kana,
    nameLatin: latin,
    birthDate: r.birth_date,
    postalCode: "100-0005",
    address: `東京都千代田区丸の内一丁目${i + 1}番`,
    phone: "03-1234-5678",
    email: `applicant${i}@example.jp`,
    qualification: r.qualification,
    licenceNumber: r.registration_number,
    licenceDate: r.registration_date,
    organizationKanji: "丸の内テスト病院",
    organizationLatin: "Marunouchi Test Hospital",
    requestSign: "on",
    requestAuth: "on",
    ...over,
  };
}

/** A small, well-formed PDF (one empty page); `tag` makes its bytes (and SHA-256) distinct. */
export function samplePdf(tag: string): Buffer {
  return Buffer.from(
    `%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n` +
      `3 0 obj <</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]>> endobj\n% ${tag}\ntrailer <</Root 1 0 R>>\n%%EOF\n`,
    "latin1",
  );
}

/** A 1×1 PNG. */
export function samplePng(): Buffer {
  return Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64");
}

/** The documents an approval needs (see requiredDocuments), as PDFs tagged with `tag`. */
export function requiredUploads(tag: string, director = false): { kind: string; filename: string; bytes: Buffer }[] {
  const kinds = ["application_form", "identity_document", "licence_copy", ...(director ? ["director_proof"] : [])];
  return kinds.map((kind) => ({ kind, filename: `${kind}.pdf`, bytes: samplePdf(`${tag}:${kind}`) }));
}

/** A face-to-face identity check that passes (document valid for another year). */
export function identityCheckInput(): Record<string, unknown> {
  const expiry = new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10);
  return { documentType: "driver_licence", documentNumber: "123456789012", expiryDate: expiry, method: "face_to_face", photoMatches: "on" };
}
