/**
 * Knex migration source listing migrations/ explicitly: order is visible in one place and the
 * files are loaded through the same TypeScript loader as the rest of the code.
 */
import type { Knex } from "knex";

interface Migration {
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

const migrations: Record<string, () => Promise<Migration>> = {
  "0001_audit_log": () => import("../../migrations/0001_audit_log.ts"),
  "0002_certificate_authorities": () => import("../../migrations/0002_certificate_authorities.ts"),
  "0003_certificates": () => import("../../migrations/0003_certificates.ts"),
  "0004_cards": () => import("../../migrations/0004_cards.ts"),
  "0005_revocations": () => import("../../migrations/0005_revocations.ts"),
  "0006_crls": () => import("../../migrations/0006_crls.ts"),
  "0020_ocsp_responders": () => import("../../migrations/0020_ocsp_responders.ts"),
  "0021_ocsp_responses": () => import("../../migrations/0021_ocsp_responses.ts"),
  "0022_revocations_updated_at": () => import("../../migrations/0022_revocations_updated_at.ts"),
  "0023_crls_revocations_as_of": () => import("../../migrations/0023_crls_revocations_as_of.ts"),
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: (name) => migrations[name](),
};
