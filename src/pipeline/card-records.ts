/**
 * What the card page of the RA, LRA and IA consoles shows (issue 13 §1): the card with its state
 * and history (card_events), the certificates issued onto it with their lifecycle state and
 * history (certificate_events), the application it serves and the cards it replaces or is
 * replaced by. LRA operators see only their association's cards (NotFoundError otherwise).
 */
import type { Knex } from "knex";
import { cardLifecycle, cardLraId, cardRecord, type CardRecord, type CardState } from "./card-lifecycle.ts";
import { certificateLifecycle, type CertificateState } from "./certificate-lifecycle.ts";
import { NotFoundError } from "./errors.ts";
import { lifecycleHistory, lifecycleTransitionsFrom, type LifecycleActor, type LifecycleEvent } from "./lifecycle.ts";
import { isLraRole, type OperatorRole } from "./operator.ts";

/** A history row with its states named in both languages. */
export interface NamedEvent extends LifecycleEvent {
  fromJa: string | null;
  toJa: string;
  toEn: string;
}

export interface CardCertificate {
  id: number;
  caName: string;
  serialHex: string;
  profile: string;
  state: CertificateState;
  stateJa: string;
  stateEn: string;
  notBefore: Date;
  notAfter: Date;
  history: NamedEvent[];
}

export interface CardPage {
  card: Omit<CardRecord, "history">;
  history: NamedEvent[];
  certificates: CardCertificate[];
  application: { id: number; applicationNo: string; nameKanji: string; nameKana: string; subscriberId: string | null; lraId: number | null } | null;
  /** Transitions the viewer's role could take now (names; the console decides which it offers). */
  transitions: string[];
}

function named<S extends string>(events: LifecycleEvent[], ja: Record<S, string>, en: Record<S, string>): NamedEvent[] {
  return events.map((e) => ({
    ...e,
    fromJa: e.from ? (ja[e.from as S] ?? e.from) : null,
    toJa: ja[e.to as S] ?? e.to,
    toEn: en[e.to as S] ?? e.to,
  }));
}

/**
 * The card page of card `label` for `viewer`. @throws NotFoundError when there is no such card or
 * it belongs to another regional association than an LRA viewer's.
 */
export async function cardPage(db: Knex, label: string, viewer: LifecycleActor): Promise<CardPage> {
  const rec = await cardRecord(db, label);
  if (!rec) throw new NotFoundError(`card ${label} not found`, `カードが見つかりません（${label}）`);
  if (isLraRole(viewer.role as OperatorRole)) {
    const lra = await cardLraId(db, label);
    if (lra == null || lra !== viewer.lraId) throw new NotFoundError(`card ${label} not found`, `カードが見つかりません（${label}）`);
  }
  const { history, ...card } = rec;
  const certRows = await db("certificates as c").join("certificate_authorities as ca", "ca.id", "c.ca_id")
    .where({ "c.card_label": label, "c.status": "issued" }).orderBy("c.id")
    .select("c.id", "ca.name as ca_name", "c.serial_hex", "c.profile", "c.lifecycle_state", "c.not_before", "c.not_after");
  const certificates: CardCertificate[] = [];
  for (const c of certRows) {
    const state = c.lifecycle_state as CertificateState;
    certificates.push({
      id: Number(c.id), caName: c.ca_name, serialHex: c.serial_hex, profile: c.profile, state,
      stateJa: certificateLifecycle.stateJa[state] ?? state, stateEn: certificateLifecycle.stateEn[state] ?? state,
      notBefore: new Date(c.not_before), notAfter: new Date(c.not_after),
      history: named(await lifecycleHistory(db, certificateLifecycle, c.id), certificateLifecycle.stateJa, certificateLifecycle.stateEn),
    });
  }
  const app = await db("issuance_requests as ir").join("applications as a", "a.id", "ir.application_id")
    .where("ir.card_label", label).orderBy("ir.id", "desc")
    .first("a.id", "a.application_no", "a.name_kanji", "a.name_kana", "a.subscriber_id", "a.lra_id");
  return {
    card,
    history: named(history, cardLifecycle.stateJa, cardLifecycle.stateEn),
    certificates,
    application: app ? {
      id: Number(app.id), applicationNo: app.application_no, nameKanji: app.name_kanji, nameKana: app.name_kana,
      subscriberId: app.subscriber_id ?? null, lraId: app.lra_id == null ? null : Number(app.lra_id),
    } : null,
    transitions: lifecycleTransitionsFrom(cardLifecycle, card.state, viewer.role),
  };
}

/** One row of the card list. */
export interface CardListItem {
  label: string;
  cardSerial: string;
  state: CardState;
  stateJa: string;
  stateEn: string;
  applicationNo: string | null;
  nameKanji: string | null;
  updatedAt: Date;
}

/**
 * Cards matching `q` (label, card serial, application number or applicant name; all when empty)
 * and `state`, newest first, at most `limit`; an LRA viewer sees its association's cards only.
 */
export async function listCards(db: Knex, viewer: LifecycleActor, o: { q?: string; state?: string; limit?: number } = {}): Promise<CardListItem[]> {
  const latest = db("issuance_requests").whereNotNull("card_label").groupBy("card_label").select("card_label", db.raw("max(id) AS id"));
  const q = db("cards as c")
    .leftJoin(latest.as("lr"), "lr.card_label", "c.label")
    .leftJoin("issuance_requests as ir", "ir.id", "lr.id")
    .leftJoin("applications as a", "a.id", "ir.application_id")
    .orderBy("c.updated_at", "desc").orderBy("c.id", "desc").limit(o.limit ?? 200)
    .select("c.label", "c.card_serial", "c.status", "c.updated_at", "a.application_no", "a.name_kanji");
  if (isLraRole(viewer.role as OperatorRole)) q.where("a.lra_id", viewer.lraId ?? -1);
  if (o.state) q.where("c.status", o.state);
  const text = o.q?.normalize("NFC").trim();
  if (text) {
    const like = `%${text.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
    q.where((w) => w.whereILike("c.label", like).orWhereILike("c.card_serial", like).orWhereILike("a.application_no", like).orWhereILike("a.name_kanji", like));
  }
  return (await q).map((r) => {
    const state = r.status as CardState;
    return {
      label: r.label, cardSerial: r.card_serial, state, stateJa: cardLifecycle.stateJa[state] ?? state, stateEn: cardLifecycle.stateEn[state] ?? state,
      applicationNo: r.application_no ?? null, nameKanji: r.name_kanji ?? null, updatedAt: new Date(r.updated_at),
    };
  });
}
