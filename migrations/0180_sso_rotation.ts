import type { Knex } from "knex";

/**
 * Issue 14 §8, rotation without cutting relying parties off.
 * - sso_signing_keys.signs_from: when the key starts signing (NULL: since created_at). A rotated-in
 *   key is published in the JWKS first and signs only from then on.
 * - sso_signing_keys.published_until: when a retired key leaves the JWKS (NULL: not scheduled),
 *   after the last token it signed has expired. retired_at (0027) is when it stopped signing.
 * - sso_clients.previous_secret_sha256 / previous_secret_until: the secret before the last
 *   rotation, still accepted until then (the overlap).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable("sso_signing_keys", (t) => {
    t.timestamp("signs_from", { useTz: true });
    t.timestamp("published_until", { useTz: true });
  });
  await db.schema.alterTable("sso_clients", (t) => {
    t.binary("previous_secret_sha256");
    t.timestamp("previous_secret_until", { useTz: true });
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
