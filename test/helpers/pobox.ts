/**
 * The PO box in tests: `hpki serve --role sso,pobox` as a child on a port chosen beforehand (the
 * box's OIDC redirect URI names it), the box registered at the SSO center, and persons with a
 * SoftHSM card holding an auth-person certificate of our CA (to sign in) and an encryption key
 * made on the card, its `enc` certificate signed by a software test chain (tests of the box
 * alone; the directory tests use our CA).
 */
import { cardKeyAgent } from "../../src/hsm/card-decrypt.ts";
import type { CardSession } from "../../src/hsm/cards.ts";
import type { RecipientKeyAgent } from "../../src/pki/envelope.ts";
import { compileTbsTemplate } from "../../src/pki/tbs.ts";
import { computeValidity } from "../../src/pki/validity.ts";
import { registerClient } from "../../src/sso/clients.ts";
import { MEDIS_LIKE_SUBJECT, loadProfile, signTbs, type TestCa } from "../unit/helpers/pki-fixtures.ts";
import { issueAuthCard, type TestIa } from "./ia.ts";
import { freePort } from "../../src/web/free-port.ts";
import { serveSso } from "./sso-serve.ts";

export { freePort } from "../../src/web/free-port.ts";

/** Registers the box at the SSO center for `url` and starts `hpki serve --role <roles>` on its port. */
export async function servePobox(ia: TestIa, env: NodeJS.ProcessEnv, roles = "sso,pobox"): Promise<{ url: string; stop(): Promise<number | null> }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const { secret } = await registerClient(ia.ctx.db, { clientId: "hpki-pobox", name: "医療用私書箱", redirectUris: [`${url}/pobox/callback`], accountMapping: "linked",
    // The box keys accounts on the subscriber id: a default scope, so no consent page (docs/POBOX.md).
    defaultScopes: ["openid", "profile", "hcrole", "organization", "subscriber"] }, { actor: "test-admin", role: "admin" });
  return serveSso({ ...env, HPKI_POBOX_CLIENT_SECRET: secret }, roles, port);
}

export interface TestPerson {
  subscriberId: string;
  card: { label: string; pin: string };
  encId: Buffer;
  encCert: Buffer;
  /** Set by openAgent: the card's session and its key agent (one open session per card in a process). */
  session?: CardSession;
  agent: RecipientKeyAgent;
}

/** Opens the card (after the sign-in, which needs the card itself) and sets the person's key agent. */
export async function openAgent(ia: TestIa, person: TestPerson): Promise<void> {
  person.session = await ia.ctx.cards.openCard(person.card.label, person.card.pin);
  person.agent = cardKeyAgent(person.session, person.encId, person.encCert);
}

let serial = 0x0e0c0100;

/**
 * A person with a card: auth-person certificate from our CA (sign-in), and an EC P-256 key made on
 * the card for decryption with an `enc` certificate from the test chain `chain`.
 */
export async function personWithCard(ia: TestIa, chain: { ca: TestCa }, subscriberId: string, hcRole: string, name: { latin: string; kanji: string }): Promise<TestPerson> {
  const card = await issueAuthCard(ia.ctx, { hcRole, subscriberId, name }, { actor: "test", role: "ia" });
  const session = await ia.ctx.cards.openCard(card.label, card.pin);
  const enc = await session.generateKeyPair("enc", "P-256", undefined, "decrypt");
  const profile = loadProfile("enc");
  const tbs = compileTbsTemplate(profile, chain.ca.issuer)({
    serialNumber: Buffer.from((serial++).toString(16).padStart(8, "0"), "hex"),
    subject: { kind: "subscriber", subject: { ...MEDIS_LIKE_SUBJECT, subscriberId, hcRole, name } },
    subjectPublicKeyInfo: enc.spki,
    validity: computeValidity(profile, new Date()),
  });
  const encCert = signTbs(tbs, chain.ca.key);
  await session.writeCertificate(enc.id, encCert, "enc");
  session.close();
  return { subscriberId, card, encId: enc.id, encCert, agent: { certificate: encCert } };
}
