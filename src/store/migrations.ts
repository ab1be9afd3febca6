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
  "0007_operators": () => import("../../migrations/0007_operators.ts"),
  "0008_applications": () => import("../../migrations/0008_applications.ts"),
  "0009_application_documents": () => import("../../migrations/0009_application_documents.ts"),
  "0010_lra_batches": () => import("../../migrations/0010_lra_batches.ts"),
  "0011_issuance_requests": () => import("../../migrations/0011_issuance_requests.ts"),
  "0012_delivery_batches": () => import("../../migrations/0012_delivery_batches.ts"),
  "0013_receipts": () => import("../../migrations/0013_receipts.ts"),
  "0014_audit_head": () => import("../../migrations/0014_audit_head.ts"),
  "0015_licence_register": () => import("../../migrations/0015_licence_register.ts"),
  "0016_revocation_requests": () => import("../../migrations/0016_revocation_requests.ts"),
  "0017_expiry_notices": () => import("../../migrations/0017_expiry_notices.ts"),
  "0020_ocsp_responders": () => import("../../migrations/0020_ocsp_responders.ts"),
  "0021_ocsp_responses": () => import("../../migrations/0021_ocsp_responses.ts"),
  "0022_revocations_updated_at": () => import("../../migrations/0022_revocations_updated_at.ts"),
  "0023_crls_revocations_as_of": () => import("../../migrations/0023_crls_revocations_as_of.ts"),
  "0025_sso_clients": () => import("../../migrations/0025_sso_clients.ts"),
  "0026_sso_oidc_payloads": () => import("../../migrations/0026_sso_oidc_payloads.ts"),
  "0027_sso_keys": () => import("../../migrations/0027_sso_keys.ts"),
  "0028_sso_accounts": () => import("../../migrations/0028_sso_accounts.ts"),
  "0029_sso_logins": () => import("../../migrations/0029_sso_logins.ts"),
  "0030_operator_certificates": () => import("../../migrations/0030_operator_certificates.ts"),
  "0040_expiry_notices_claimed_at": () => import("../../migrations/0040_expiry_notices_claimed_at.ts"),
  "0050_sso_sealed_keys": () => import("../../migrations/0050_sso_sealed_keys.ts"),
  "0070_issuance_saga": () => import("../../migrations/0070_issuance_saga.ts"),
  "0080_audit_checkpoints": () => import("../../migrations/0080_audit_checkpoints.ts"),
  "0090_login_failures": () => import("../../migrations/0090_login_failures.ts"),
  "0091_operator_totp_sealed": () => import("../../migrations/0091_operator_totp_sealed.ts"),
  "0100_ocsp_responses_freshness": () => import("../../migrations/0100_ocsp_responses_freshness.ts"),
  "0120_sso_session_binding": () => import("../../migrations/0120_sso_session_binding.ts"),
  "0121_sso_client_scopes": () => import("../../migrations/0121_sso_client_scopes.ts"),
  "0130_issuance_corrections": () => import("../../migrations/0130_issuance_corrections.ts"),
  "0150_name_search_keys": () => import("../../migrations/0150_name_search_keys.ts"),
  "0151_postcodes": () => import("../../migrations/0151_postcodes.ts"),
  "0160_card_lifecycle": () => import("../../migrations/0160_card_lifecycle.ts"),
  "0161_card_pins": () => import("../../migrations/0161_card_pins.ts"),
  "0170_card_replacement": () => import("../../migrations/0170_card_replacement.ts"),
  "0171_hcrole_confirmations": () => import("../../migrations/0171_hcrole_confirmations.ts"),
  "0180_sso_rotation": () => import("../../migrations/0180_sso_rotation.ts"),
  "0181_sso_client_keys": () => import("../../migrations/0181_sso_client_keys.ts"),
  "0190_applications_request_enc": () => import("../../migrations/0190_applications_request_enc.ts"),
  "0195_pobox": () => import("../../migrations/0195_pobox.ts"),
  "0196_pobox_organisation": () => import("../../migrations/0196_pobox_organisation.ts"),
  "0200_pobox_patients": () => import("../../migrations/0200_pobox_patients.ts"),
  "0210_sso_consent": () => import("../../migrations/0210_sso_consent.ts"),
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: (name) => migrations[name](),
};
