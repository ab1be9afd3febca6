/**
 * The part of `hpki demo` after handover (issue 13 §10): one of each card workflow, driven over
 * the consoles' HTTP interface like the first part (demo-pipeline.ts) —
 *   - a PIN unblock (PINロック解除): asked at the LRA desk with the identity re-checked, approved by
 *     an RA approver, run at the IA with the card's sealed SO PIN (SO login + C_InitPIN), the new
 *     PIN mailer printed;
 *   - a lost card (紛失): the phone call's emergency hold, the reissue at the desk without a new
 *     application (identity re-checked), the keyCompromise revocation approved by a second officer
 *     and executed before the new card is issued;
 *   - a renewal (更新) from the prefilled renewal form the expiry notice links to;
 *   - a name change (記載事項変更) with its document, the register extract carrying the new name;
 *   - a new director (role_gained: O and OU=Director);
 * the four new cards through the IA, delivery and handover; then the replaced cards' certificates
 * revoked (superseded or affiliationChanged at handover, RFC 5280 §5.3.1) and listed with their
 * reasons on the repository's CRLs.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { ConsoleClient } from "../web/console/client.ts";
import { DEMO_AFTER_HANDOVER as S } from "./demo-applicants.ts";
import {
  acceptRecordedReceipts, checkIdentityAtDesk, handOverAtDesk, ok, receiveShippedDeliveries, runIssuanceJob, shipWaitingDeliveries, uploadScan, waitFor,
  type DemoConsoles,
} from "./demo-consoles.ts";
import type { DemoRunResult } from "./demo-pipeline.ts";

/** A card replaced after handover: the record that replaced it, both cards, and how the old certificates ended. */
export interface DemoReplacement {
  workflow: "reissue" | "renewal" | "name_change" | "role_gained";
  applicationNo: string;
  oldCard: string;
  newCard: string;
  /** The CRL reason of the old card's certificates (RFC 5280 §5.3.1), as read from the repository's CRLs. */
  oldCertificatesRevoked: string;
}

/** What the part after handover did (the demo's summary field `afterHandover`). */
export interface AfterHandoverResult {
  pinUnblocked: number;
  reissued: number;
  renewed: number;
  nameChanged: number;
  newDirector: number;
  replacements: DemoReplacement[];
  /** The printed PIN mailer of the unblocked card (PDF, 0600). */
  pinMailer: string;
}

export interface AfterHandoverOptions {
  log: (s: string) => void;
  /** Where the printed PIN mailer is written. */
  outDir: string;
  /** Imports the register extract that carries the changed name (as `hpki licenses import` does). */
  updateRegister: () => Promise<void>;
}

type Handed = NonNullable<DemoRunResult["handedOver"]>[number];

/** CRL reason texts of `openssl crl -text` → RFC 5280 names. */
const OPENSSL_REASONS: Record<string, string> = {
  "Key Compromise": "keyCompromise", Superseded: "superseded", "Affiliation Changed": "affiliationChanged",
  "Cessation Of Operation": "cessationOfOperation", "Certificate Hold": "certificateHold", Unspecified: "unspecified",
};

/** The entries of a DER CRL as OpenSSL reads them: serial (upper-case hex, no leading zeros) → reason. */
export function crlEntries(der: Buffer): Map<string, string> {
  const text = execFileSync("openssl", ["crl", "-inform", "DER", "-noout", "-text"], { input: der, encoding: "utf8" });
  const out = new Map<string, string>();
  for (const part of text.split("Serial Number: ").slice(1)) {
    const serial = part.slice(0, part.search(/\s/)).toUpperCase().replace(/^0+(?=.)/, "");
    const reason = /CRL Reason Code:\s*\n\s*(.+)/.exec(part)?.[1].trim() ?? "";
    out.set(serial, OPENSSL_REASONS[reason] ?? reason);
  }
  return out;
}

const normalSerial = (hex: string) => hex.toUpperCase().replace(/^0+(?=.)/, "");

/** Drives the five workflows after handover on the subscribers of `handedOver`. */
export async function driveAfterHandover(consoles: DemoConsoles, handedOver: Handed[], o: AfterHandoverOptions): Promise<AfterHandoverResult> {
  const { log } = o;
  const officer = await consoles.as("ra-officer");
  const approver = await consoles.as("ra-approver");
  const ia = await consoles.as("ia-operator");
  const record = (licence: string): Handed => {
    const r = handedOver.find((h) => h.licence === licence);
    if (!r) throw new Error(`licence ${licence} was not handed a card in this demo run`);
    return r;
  };
  const cardOf = async (applicationNo: string): Promise<string> => {
    const { cards } = ok(await officer.getJson(`/cards?q=${encodeURIComponent(applicationNo)}`), 200, "card search") as { cards: { label: string; applicationNo: string }[] };
    const c = cards.find((x) => x.applicationNo === applicationNo);
    if (!c) throw new Error(`no card of ${applicationNo}`);
    return c.label;
  };
  const revocationExecuted = (id: number, what: string) => waitFor(what, async () => {
    const { request } = ok(await officer.getJson(`/revocations/${id}`), 200, what) as { request: { state: string; lastError?: string } };
    if (request.state === "failed") throw new Error(`${what} failed at the IA: ${request.lastError}`);
    return request.state === "executed" ? true : undefined;
  });

  log("-- PIN unblock (PINロック解除): asked at the Osaka desk (identity re-checked), RA approver, IA with the card (SO PIN sealed in the HSM)");
  const pinMailer = await unblockPin(consoles, approver, ia, await cardOf(record(S.pinUnblock.licence).applicationNo), o.outDir, log);

  log("-- Lost card (紛失): phone call → emergency hold; reissue at the desk without a new application; keyCompromise approved by a second officer");
  const lost = record(S.lostCard.licence);
  const lostCard = await cardOf(lost.applicationNo);
  const hold = ok(await officer.postJson("/revocations/emergency", {
    targetKind: "card", cardLabel: lostCard, reason: "certificateHold", grounds: S.lostCard.grounds, callerVerification: "登録の電話番号へ折り返して本人確認",
  }), 201, "emergency hold").request as { id: number; requestNo: string };
  await revocationExecuted(hold.id, `emergency hold ${hold.requestNo}`);
  log(`  ${lostCard}: on hold (${hold.requestNo}, executed by the IA within seconds)`);
  const started = ok(await officer.postJson(`/cards/${lostCard}/reissue`, { reason: "loss", grounds: "紛失届を窓口で受領" }), 201, "reissue");
  const reissue = started.application as { id: number; applicationNo: string };
  const compromise = started.revocationRequest as { id: number; requestNo: string };
  await checkIdentityAtDesk(officer, reissue.id, `30${S.lostCard.licence}00`);
  ok(await officer.postJson(`/applications/${reissue.id}/decision`, { decision: "ra_approve" }), 200, `RA approval of ${reissue.applicationNo}`);
  ok(await approver.postJson(`/revocations/${compromise.id}/approve`, {}), 200, `approval of ${compromise.requestNo}`);
  await revocationExecuted(compromise.id, `keyCompromise revocation ${compromise.requestNo}`);
  log(`  ${reissue.applicationNo}: reissue from the verified data; ${compromise.requestNo} (keyCompromise) approved by ra-approver and executed`);

  log("-- Renewal (更新): the prefilled renewal form the expiry notice links to (taken early: the demo's certificates are new), a new address");
  const renewed = record(S.renewal.licence);
  const renewedCard = await cardOf(renewed.applicationNo);
  const prefill = ok(await officer.getJson(`/expiry/renewal/${renewed.applicationId}`), 200, "renewal form") as { values: Record<string, string> };
  const renewal = ok(await officer.postJson(`/expiry/renewal/${renewed.applicationId}`, {
    ...prefill.values, address: S.renewal.address, postalCode: S.renewal.postalCode,
  }), 201, "renewal").application as { id: number; applicationNo: string };
  for (const kind of ["application_form", "identity_document", "licence_copy"]) await uploadScan(officer, renewal.id, renewal.applicationNo, kind);
  await approveAtRaDesk(officer, renewal, S.renewal.licence);
  log(`  ${renewal.applicationNo}: renewal of ${renewed.applicationNo}, licence re-checked, approved`);

  log("-- Name change (氏名の変更): the document proving it; the licence register extract with the new name imported");
  const renamed = record(S.nameChange.licence);
  const renamedCard = await cardOf(renamed.applicationNo);
  const nameChange = await startChange(officer, renamedCard, {
    change: "name_change", nameKanji: S.nameChange.nameKanji, nameKana: S.nameChange.nameKana, nameLatin: S.nameChange.nameLatin,
  });
  await uploadScan(officer, nameChange.id, nameChange.applicationNo, "name_change_proof");
  await o.updateRegister();
  await approveAtRaDesk(officer, nameChange, S.nameChange.licence);
  log(`  ${nameChange.applicationNo}: ${S.nameChange.nameKanji}（${S.nameChange.nameLatin}）, licence check matches the updated register`);

  log("-- New director (管理者資格の追加): proof of the position; certificates with O and OU=Director");
  const director = record(S.newDirector.licence);
  const directorCard = await cardOf(director.applicationNo);
  const roleGained = await startChange(officer, directorCard, { change: "role_gained", managerRole: S.newDirector.managerRole });
  await uploadScan(officer, roleGained.id, roleGained.applicationNo, "director_proof");
  await approveAtRaDesk(officer, roleGained, S.newDirector.licence);
  log(`  ${roleGained.applicationNo}: ${S.newDirector.managerRole}`);

  log("-- Four new cards: issuance requests (two people), IA, delivery, handover at the RA desk");
  const replacing = [
    { workflow: "reissue" as const, app: reissue, oldCard: lostCard, licence: S.lostCard.licence },
    { workflow: "renewal" as const, app: renewal, oldCard: renewedCard, licence: S.renewal.licence },
    { workflow: "name_change" as const, app: nameChange, oldCard: renamedCard, licence: S.nameChange.licence },
    { workflow: "role_gained" as const, app: roleGained, oldCard: directorCard, licence: S.newDirector.licence },
  ];
  for (const r of replacing) {
    const ir = ok(await officer.postJson(`/applications/${r.app.id}/issuance-request`, {}), 201, `issuance request ${r.app.applicationNo}`).issuanceRequest as { id: number };
    ok(await approver.postJson(`/issuance-requests/${ir.id}/approve`, {}), 200, `approval of issuance request ${ir.id}`);
  }
  await runIssuanceJob(ia, log);
  await shipWaitingDeliveries(ia, log);
  await receiveShippedDeliveries(officer);
  for (const r of replacing) await handOverAtDesk(officer, r.app.id, r.app.applicationNo, r.licence);
  log(`  ${await acceptRecordedReceipts(officer)} receipts reviewed; the old cards' certificates filed for revocation at handover`);

  log("-- The replaced cards' certificates revoked and on the repository's CRLs");
  const replacements: DemoReplacement[] = [];
  for (const r of replacing) {
    const reason = await revokedOnCrl(consoles.origin, officer, r.oldCard);
    const newCard = await cardOf(r.app.applicationNo);
    replacements.push({ workflow: r.workflow, applicationNo: r.app.applicationNo, oldCard: r.oldCard, newCard, oldCertificatesRevoked: reason });
    log(`  ${r.workflow.padEnd(11)} ${r.oldCard} → ${newCard}: old certificates on the CRL as ${reason}`);
  }
  const count = (w: DemoReplacement["workflow"]) => replacements.filter((r) => r.workflow === w).length;
  return {
    pinUnblocked: 1, reissued: count("reissue"), renewed: count("renewal"), nameChanged: count("name_change"), newDirector: count("role_gained"),
    replacements, pinMailer,
  };
}

/** The PIN unblock of `cardLabel`; returns the printed PIN mailer's file. */
async function unblockPin(consoles: DemoConsoles, approver: ConsoleClient, ia: ConsoleClient, cardLabel: string, outDir: string, log: (s: string) => void): Promise<string> {
  const desk = await consoles.as(S.pinUnblock.desk);
  const request = ok(await desk.postJson(`/cards/${cardLabel}/pin-unblock-requests`, {
    reason: "PIN誤入力によるロック（窓口で申出）",
    identityCheck: { documentType: "driver_licence", documentNumber: `30${S.pinUnblock.licence}00`, photoMatches: true },
  }), 201, "PIN unblock request").request as { id: number; requestNo: string };
  ok(await approver.postJson(`/pin-unblock-requests/${request.id}/decision`, { decision: "approve" }), 200, `approval of ${request.requestNo}`);
  const { unblock } = ok(await ia.postJson(`/pin-unblock-requests/${request.id}/execute`, {}), 200, `unblock ${request.requestNo}`) as { unblock: { pinMailerNo: string } };
  const printed = await ia.bytes("POST", `/pin-mailers/${unblock.pinMailerNo}/print`);
  if (printed.status !== 200 || !printed.type.includes("pdf")) throw new Error(`printing PIN mailer ${unblock.pinMailerNo}: HTTP ${printed.status}`);
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${unblock.pinMailerNo}.pdf`);
  fs.writeFileSync(file, printed.bytes, { mode: 0o600 });
  log(`  ${cardLabel}: ${request.requestNo} approved by ra-approver, unblocked at the IA; PIN mailer ${unblock.pinMailerNo} printed (the PIN erased): ${file}`);
  return file;
}

/** A change of particulars of `cardLabel` at the RA desk, the form prefilled from the record. */
async function startChange(officer: ConsoleClient, cardLabel: string, change: Record<string, string>): Promise<{ id: number; applicationNo: string }> {
  const { values } = ok(await officer.getJson(`/cards/${cardLabel}/replace`), 200, "change form") as { values: Record<string, string> };
  return ok(await officer.postJson(`/cards/${cardLabel}/change`, { ...values, ...change }), 201, `${change.change} of ${cardLabel}`).application;
}

/** Identity re-checked face to face and the RA's approval (the licence checked against the register again). */
async function approveAtRaDesk(officer: ConsoleClient, app: { id: number; applicationNo: string }, licence: string): Promise<void> {
  await checkIdentityAtDesk(officer, app.id, `30${licence}00`);
  ok(await officer.postJson(`/applications/${app.id}/decision`, { decision: "ra_approve" }), 200, `RA approval of ${app.applicationNo}`);
}

/**
 * Waits until every certificate of `cardLabel` is revoked and listed on its CA's CRL as served by
 * the repository (the IA regenerates it right after the revocation); returns the CRL reason.
 */
async function revokedOnCrl(origin: string, officer: ConsoleClient, cardLabel: string): Promise<string> {
  return waitFor(`the CRL entries of ${cardLabel}`, async () => {
    const { certificates } = ok(await officer.getJson(`/cards/${cardLabel}`), 200, `card ${cardLabel}`) as { certificates: { caName: string; serialHex: string }[] };
    const reasons = new Set<string>();
    for (const c of certificates) {
      const res = await fetch(`${origin}/crl/${encodeURIComponent(c.caName)}.crl`);
      if (res.status !== 200) return undefined;
      const reason = crlEntries(Buffer.from(await res.arrayBuffer())).get(normalSerial(c.serialHex));
      if (!reason || reason === "certificateHold") return undefined;
      reasons.add(reason);
    }
    return certificates.length ? [...reasons].join(",") : undefined;
  }, { intervalMs: 500 });
}
