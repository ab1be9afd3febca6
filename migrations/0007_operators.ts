import type { Knex } from "knex";

/**
 * Regional associations (地域受付審査局, the LRAs), console operators and their login sessions.
 *
 * - lras: one row per regional association; `code` is the association's public code ("13-001").
 * - operators: one trusted role per account (src/pipeline/operator.ts). LRA roles must name their
 *   association, every other role must not (CHECK). Passwords are stored only as argon2id PHC
 *   strings; `totp_last_counter` is the last accepted TOTP time step, so a code is accepted once.
 * - console_sessions: express-session rows written by connect-session-knex 5 (sid, sess json,
 *   expired); the store runs with createTable: false.
 */
/**
 * The trusted roles as of this migration, frozen here: a forward-only migration must not change
 * when src/pipeline/operator.ts's OPERATOR_ROLES does (a later role needs its own migration).
 */
const OPERATOR_ROLES = ["lra_reviewer", "lra_manager", "ra_officer", "ra_approver", "ia_operator", "auditor", "admin"] as const;

export async function up(db: Knex): Promise<void> {
  await db.schema.createTable("lras", (t) => {
    t.increments("id").primary();
    t.text("code").notNullable().unique();
    t.text("name").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  const roles = OPERATOR_ROLES.map((r) => `'${r}'`).join(", ");
  await db.schema.createTable("operators", (t) => {
    t.increments("id").primary();
    t.text("username").notNullable().unique();
    t.text("display_name").notNullable();
    t.text("role").notNullable();
    t.integer("lra_id").references("id").inTable("lras");
    t.text("password_hash").notNullable();
    t.text("totp_secret").notNullable();
    t.bigInteger("totp_last_counter");
    t.integer("failed_logins").notNullable().defaultTo(0);
    t.timestamp("locked_until", { useTz: true });
    t.boolean("disabled").notNullable().defaultTo(false);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(["lra_id"]);
  });
  await db.raw(`ALTER TABLE operators ADD CONSTRAINT operators_role_check CHECK (role IN (${roles}))`);
  await db.raw(`ALTER TABLE operators ADD CONSTRAINT operators_lra_scope_check CHECK (
    (role IN ('lra_reviewer', 'lra_manager')) = (lra_id IS NOT NULL))`);
  await db.raw(`ALTER TABLE operators ADD CONSTRAINT operators_password_argon2id_check CHECK (password_hash LIKE '$argon2id$%')`);
  await db.schema.createTable("console_sessions", (t) => {
    t.string("sid", 255).primary();
    t.json("sess").notNullable();
    t.timestamp("expired", { useTz: true }).notNullable().index();
  });
}

export async function down(): Promise<void> {
  throw new Error("migrations are forward-only");
}
