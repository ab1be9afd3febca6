/**
 * Stable subject identifiers (OIDC Core §2 "sub … never reassigned", §8.1 pairwise; issue 14 §2).
 * The first time a client is to see a person, the pairwise pseudonym
 * HMAC-SHA256(salt, clientId ‖ 0x00 ‖ personId), base64url, is computed and recorded in
 * sso_subjects; from then on that recorded value is the person's `sub` at that client, whatever
 * happens to links, mapping or salt. A confirmed account link adds the claim `service_account_id`
 * (accounts.ts serviceAccountId) and leaves `sub` alone. The record also lets a service name a
 * person by the sub it saw (link API, {@link Subjects.personFor}).
 */
import { createHmac } from "node:crypto";
import type { Knex } from "knex";

export class Subjects {
  /** "clientId\0personId" → sub; subjects never change, so the cache is never stale. */
  private readonly cache = new Map<string, string>();

  constructor(private readonly db: Knex, private readonly pairwiseSalt: Buffer) {}

  /** The `sub` of `personId` at `clientId`: recorded, else computed and recorded (concurrent first uses agree). */
  async subFor(personId: string, clientId: string): Promise<string> {
    const key = `${clientId}\u0000${personId}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    let row = await this.db("sso_subjects").where({ client_id: clientId, person_id: personId }).first("sub");
    if (!row) {
      const sub = createHmac("sha256", this.pairwiseSalt).update(key).digest("base64url");
      await this.db("sso_subjects").insert({ client_id: clientId, sub, person_id: personId }).onConflict(["client_id", "person_id"]).ignore();
      row = await this.db("sso_subjects").where({ client_id: clientId, person_id: personId }).first("sub");
    }
    this.cache.set(key, row.sub);
    return row.sub;
  }

  /** The person whose `sub` at `clientId` is `sub`, or undefined (never seen by that client). */
  async personFor(clientId: string, sub: string): Promise<string | undefined> {
    const row = await this.db("sso_subjects").where({ client_id: clientId, sub }).first("person_id");
    return row?.person_id;
  }
}
